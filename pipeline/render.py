"""Stage 4, standardise + render: render plan -> spectrogram PNGs and feature columns in Parquet shards per corpus.

Render computes what is needed and nothing else (needed_kinds): the image, the inputs of the model named by
`model`, the crossval baseline's (crossval.baseline) and the kinds features.extra lists. Each clip's work
(PNG bytes, each feature array) is looked up in the render cache (pipeline/render_cache.py: keyed by the
source's content, its augmentation record and the settings that output depends on); workers compute only what
the cache lacks, so adding a corpus, a fold, a balance plan or a model computes only what is new. A worker reads
a file, standardises it and applies its recorded augmentation (pipeline.speech.speech_of), then renders
(pipeline.features.outputs): the same code `predict` runs. Rows stream into shards
`data/processed/shards/<corpus>-NNNNN.parquet` of at most `features.shard_rows` rows, written whole on every
run from the cache and the new work, so they are byte-identical to a from-scratch render and memory stays flat.
Shards hold no split: train and evaluate join split.parquet when they load, so another fold or split seed
leaves the render plan, and so the shards, unchanged (DVC skips this stage).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import math
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.errors import UserError
from pipeline.io import write_csv, write_json
from pipeline.params import boolean, load, section
from pipeline.paths import PNG_DIR, SHARDS
from pipeline.paths import RENDER_PLAN as PLAN
from pipeline.paths import RENDER_QUARANTINE as QUARANTINE
from pipeline.paths import RENDER_SUMMARY as REPORT
from pipeline.shards import ShardWriter

log = logging.getLogger("pipeline.render")

_STATE: dict = {}


def needed_kinds(params: dict) -> tuple[str, ...]:
    """The feature columns render computes besides the image: the inputs of `model`, the crossval baseline's
    (crossval.baseline) and features.extra, in the canonical order (features.EXTRA_KINDS)."""
    from pipeline import zoo
    from pipeline.features import EXTRA_KINDS, FeatureConfig

    wanted = set(zoo.input_kinds(params.get("model")))  # ParamsError naming `model` for an unknown one
    if boolean(section(params, "crossval"), "baseline", "crossval", True):
        wanted.add(zoo.BASELINE_INPUT)
    wanted |= set(FeatureConfig.from_params(params).extra)
    return tuple(k for k in EXTRA_KINDS if k in wanted)


def _init_worker(params: dict) -> None:
    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig

    _STATE["audio"] = AudioConfig.from_params(params)
    _STATE["features"] = dataclasses.replace(FeatureConfig.from_params(params), extra=needed_kinds(params))


def item_audio(row: dict, cfg) -> np.ndarray:
    """A plan row's audio as the spectrogram sees it: its speech (speech.speech_of) fitted to the window."""
    from pipeline import audio
    from pipeline.speech import speech_of

    return audio.fit(speech_of(row["path"], cfg, row["augmentation"]), cfg.n_samples)


def render_item(job: tuple) -> dict:
    """Worker: (plan row, kinds) -> {"outputs": {kind: PNG bytes or float32 array}}, or {'error': reason}.
    Never raises."""
    from pipeline import audio, features
    from pipeline.speech import recording_of, speech_of

    row, kinds = job
    acfg = _STATE["audio"]
    try:
        recording = recording_of(row["path"])
        speech = speech_of(row["path"], acfg, row["augmentation"], recording)
        window = audio.fit(speech, acfg.n_samples)
        # the baseline's eGeMAPS over the recording as read; a training copy has none of its own (its speech)
        out = features.outputs(window, acfg.sample_rate, _STATE["features"], kinds, speech,
                               None if row["augmented"] else recording)
    except Exception as exc:  # one bad file is quarantined, never fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"outputs": {k: v if k == "image" else np.asarray(v, dtype=np.float32) for k, v in out.items()}}


def shard_row(row: dict, values: dict) -> dict:
    """One shard row: the plan row's metadata, the image and the x_<kind> feature arrays."""
    from pipeline import features

    suffix = f"_aug{int(row['copy']):02d}" if row["augmented"] else ""
    out = {"name": features.image_name(row["display"], row["label"], row["utt_id"], suffix),
           "image": values["image"], "augmented": bool(row["augmented"]), "source_path": _text(row["path"])}
    for key in ("item_id", "utt_id", "corpus", "speaker", "gender", "text_id", "label", "augmentation"):
        out[key] = _text(row[key])
    for key, value in values.items():
        if key != "image":
            out[f"x_{key}"] = np.asarray(value, dtype=np.float32)
    return out


def _text(value) -> str | None:
    """A plan cell for a string column: pandas reads a missing string (gender, text id) back as NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _source_hash(row: dict) -> str | None:
    """The manifest's content hash of the row's file; hashed here for a plan that lacks it (None: unreadable,
    the worker quarantines it)."""
    digest = _text(row.get("content_hash"))
    if digest:
        return digest
    try:
        return hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest()
    except OSError:
        return None


def run(params: dict) -> dict:
    from pipeline import render_cache
    from pipeline.audio import AudioConfig
    from pipeline.compute import ComputeConfig, imap
    from pipeline.features import FeatureConfig, RenderOutput

    audio_cfg = AudioConfig.from_params(params)  # validate before any work
    extras = needed_kinds(params)
    feat_cfg = dataclasses.replace(FeatureConfig.from_params(params), extra=extras)
    compute = ComputeConfig.from_params(params)
    shard_rows, export_png, n_workers = dataclasses.astuple(RenderOutput.from_params(params))
    if not PLAN.exists():
        raise UserError(f"{PLAN} not found: run the balance stage first (dvc repro balance)")
    plan = pd.read_parquet(PLAN).sort_values(["corpus", "item_id"]).reset_index(drop=True)
    kinds = ("image",) + extras
    log.info("render computes the image%s (model %s, crossval.baseline, features.extra)",
             "".join(f", {k}" for k in extras), params.get("model"))
    shutil.rmtree(SHARDS, ignore_errors=True)
    if export_png:
        shutil.rmtree(PNG_DIR, ignore_errors=True)
    from pipeline.features import image_scale

    image_shape = (feat_cfg.native_shape(audio_cfg.n_samples) if feat_cfg.image == "native"
                   else feat_cfg.image_shape)
    metadata = {"labels": list(TARGET_LABELS), "channels": feat_cfg.channels, "image_shape": list(image_shape),
                # what the image's integers mean: the native image's fixed dB scale per plane (None: the papers')
                "image_scale": image_scale(feat_cfg),
                "sample_rate": audio_cfg.sample_rate, "duration": audio_cfg.duration,
                # the settings every row was made with: train copies them into the model card (pipeline/model_card)
                "audio": dataclasses.asdict(audio_cfg),
                "features": dict(dataclasses.asdict(feat_cfg), extra=list(feat_cfg.extra))}

    # What each row needs, what the cache holds, what the workers compute (each missing key once per run)
    start = time.perf_counter()
    cache = render_cache.RenderCache(render_cache.CACHE_DIR)
    code = render_cache.code_fingerprint()
    rows = plan.to_dict("records")
    keys, jobs, scheduled, uses = [], [], set(), Counter()
    for row in rows:
        digest = _source_hash(row)
        row_keys = ({k: render_cache.entry_key(k, digest, row["augmentation"], audio_cfg, feat_cfg, code)
                     for k in kinds} if digest else {})
        keys.append(row_keys)
        uses.update(row_keys.values())
        missing = tuple(k for k in kinds if not row_keys or (row_keys[k] not in cache and row_keys[k] not in scheduled))
        scheduled.update(row_keys[k] for k in missing if row_keys)
        jobs.append(missing)
    work = [(row, missing) for row, missing in zip(rows, jobs) if missing]
    seconds_lookup = time.perf_counter() - start
    print(f"render: {len(rows)} clips; {len(work)} to compute, the rest from the render cache "
          f"({len(cache.index)} entries in {render_cache.CACHE_DIR})")

    writer = ShardWriter(SHARDS, shard_rows, metadata)
    quarantine, per_corpus, failed = [], Counter(), {}
    computed, cached = Counter(), Counter()
    results = iter(imap(render_item, work, n_workers, desc="render: clips to compute", compute=compute,
                        chunksize=8, initializer=_init_worker, initargs=(params,)) if work else ())
    try:
        for row, row_keys, missing in zip(rows, keys, jobs, strict=True):
            out = next(results) if missing else {"outputs": {}}
            error = out.get("error") or next((failed[row_keys[k]] for k in kinds if row_keys.get(k) in failed), None)
            if error:
                for k in missing:
                    if row_keys:
                        failed[row_keys[k]] = error
                quarantine.append({"path": row["path"], "corpus": row["corpus"], "stage": "render",
                                   "reason": error, "item_id": row["item_id"]})
                continue
            values = {}
            for k in kinds:
                key = row_keys.get(k)  # None: a file the driver could not hash (computed, not cached)
                if key:
                    uses[key] -= 1
                if k in out["outputs"]:
                    values[k] = out["outputs"][k]
                    computed[k] += 1
                    if key:
                        cache.put(key, k, values[k], keep=uses[key] > 0)  # kept for a later duplicate
                else:
                    values[k] = cache.get(key, k)
                    cached[k] += 1
                    if uses[key] <= 0:
                        cache.release(key)
            out_row = shard_row(row, values)
            writer.add((row["corpus"],), out_row)
            per_corpus[row["corpus"]] += 1
            if export_png:
                dest = PNG_DIR / row["corpus"] / out_row["name"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(out_row["image"])
        writer.flush()
    except BaseException:
        writer.abort()
        raise
    finally:
        cache.close()  # what was computed stays cached, even when the run is interrupted
    seconds = time.perf_counter() - start
    SHARDS.mkdir(parents=True, exist_ok=True)  # a DVC output even when every file was quarantined
    write_csv(QUARANTINE, pd.DataFrame(quarantine, columns=["path", "corpus", "stage", "reason", "item_id"]))
    report = {"images": dict(per_corpus), "quarantined": len(quarantine), "shards": len(writer.written),
              "seconds": round(seconds, 2), "images_per_s": round(sum(per_corpus.values()) / max(seconds, 1e-9), 1),
              "workers": n_workers, "image_shape": metadata["image_shape"], "extras": writer.shapes,
              "kinds": list(kinds),
              # the work done: outputs computed by the workers and outputs read from the render cache, per kind
              "computed": {k: computed[k] for k in kinds}, "cached": {k: cached[k] for k in kinds},
              "cache": dict(cache.stats(), lookup_seconds=round(seconds_lookup, 2))}
    write_json(REPORT, report)
    print(f"render: {sum(per_corpus.values())} images ({', '.join(f'{k} {v}' for k, v in sorted(per_corpus.items()))})"
          f" in {len(writer.written)} shards, {len(quarantine)} quarantined, {seconds:.1f} s "
          f"({report['images_per_s']} images/s on {compute.describe(n_workers)}); computed "
          + ", ".join(f"{k} {computed[k]}" for k in kinds) + "; from the cache "
          + ", ".join(f"{k} {cached[k]}" for k in kinds))
    if quarantine:
        print(f"render: quarantined files and reasons: {QUARANTINE}")
    return report


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline render", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
