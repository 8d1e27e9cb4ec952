"""Stage 4, standardise + render: render plan -> spectrogram PNGs in Parquet shards per corpus.

Each worker reads a file, applies its recorded augmentation (training copies only), standardises it
(pipeline.audio) and renders it (pipeline.features): the same code `predict` runs. Rows stream into
shards `data/processed/shards/<corpus>-NNNNN.parquet` of at most `features.shard_rows` rows,
so memory stays flat with corpus size and adding a corpus adds shards instead of rewriting them all.
Shards hold no split: train and evaluate join split.parquet when they load, so another fold or split seed
leaves the render plan, and so the shards, unchanged (DVC skips this stage).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shutil
import time
from collections import Counter

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.errors import UserError
from pipeline.io import write_csv, write_json
from pipeline.params import load
from pipeline.paths import PNG_DIR, SHARDS
from pipeline.paths import RENDER_PLAN as PLAN
from pipeline.paths import RENDER_QUARANTINE as QUARANTINE
from pipeline.paths import RENDER_SUMMARY as REPORT
from pipeline.shards import ShardWriter

log = logging.getLogger("pipeline.render")

_STATE: dict = {}


def _init_worker(params: dict) -> None:
    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig

    _STATE["audio"] = AudioConfig.from_params(params)
    _STATE["features"] = FeatureConfig.from_params(params)


def item_audio(row: dict, cfg) -> np.ndarray:
    """A plan row's audio as the model gets it: the file standardised (mono, trimmed, resampled,
    peak-normalised), then its recorded augmentation if it is a training copy, then fitted to the window.
    Augmenting after the trim cuts a copy exactly like its original, whatever the recording's level."""
    from pipeline import audio
    from pipeline.augment import apply_recorded

    samples, sr = audio.read(row["path"])
    y = audio.prepare(samples, sr, cfg)
    if row["augmentation"]:
        y = apply_recorded(y, cfg.sample_rate, row["augmentation"], peak=1.0 if cfg.peak_normalise else None)
    return audio.fit(y, cfg.n_samples)


def render_item(row: dict) -> dict:
    """Worker: one plan row -> one shard row, or {'error': reason}. Never raises."""
    from pipeline import features

    try:
        y = item_audio(row, _STATE["audio"])
        rendered = features.render(y, _STATE["audio"].sample_rate, _STATE["features"])
    except Exception as exc:  # one bad file is quarantined, never fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    suffix = f"_aug{int(row['copy']):02d}" if row["augmented"] else ""
    out = {"name": features.image_name(row["display"], row["label"], row["utt_id"], suffix),
           "image": rendered.png, "augmented": bool(row["augmented"]), "source_path": _text(row["path"])}
    for key in ("item_id", "utt_id", "corpus", "speaker", "gender", "text_id", "label", "augmentation"):
        out[key] = _text(row[key])
    for key, value in rendered.extras.items():
        out[f"x_{key}"] = np.asarray(value, dtype=np.float32)
    return out


def _text(value) -> str | None:
    """A plan cell for a string column: pandas reads a missing string (gender, text id) back as NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def run(params: dict) -> dict:
    from pipeline.audio import AudioConfig
    from pipeline.compute import ComputeConfig, imap
    from pipeline.features import FeatureConfig, RenderOutput

    audio_cfg = AudioConfig.from_params(params)  # validate before any work
    feat_cfg = FeatureConfig.from_params(params)
    compute = ComputeConfig.from_params(params)
    shard_rows, export_png, n_workers = dataclasses.astuple(RenderOutput.from_params(params))
    if not PLAN.exists():
        raise UserError(f"{PLAN} not found: run the balance stage first (dvc repro balance)")
    plan = pd.read_parquet(PLAN).sort_values(["corpus", "item_id"]).reset_index(drop=True)
    shutil.rmtree(SHARDS, ignore_errors=True)
    if export_png:
        shutil.rmtree(PNG_DIR, ignore_errors=True)
    metadata = {"labels": list(TARGET_LABELS), "channels": feat_cfg.channels,
                "image_shape": [feat_cfg.image_height, feat_cfg.image_width, 1 if feat_cfg.channels == "gray" else 3],
                "sample_rate": audio_cfg.sample_rate, "duration": audio_cfg.duration,
                # the settings every row was made with: train copies them into the model card (pipeline/model_card)
                "audio": dataclasses.asdict(audio_cfg),
                "features": dict(dataclasses.asdict(feat_cfg), extra=list(feat_cfg.extra))}
    writer = ShardWriter(SHARDS, shard_rows, metadata)
    quarantine, per_corpus = [], Counter()
    rows = plan.to_dict("records")
    start = time.perf_counter()
    results = imap(render_item, rows, n_workers, desc="render: spectrograms", compute=compute, chunksize=8,
                   initializer=_init_worker, initargs=(params,))
    try:
        for row, out in zip(rows, results, strict=True):
            if "error" in out:
                quarantine.append({"path": row["path"], "corpus": row["corpus"], "stage": "render",
                                   "reason": out["error"], "item_id": row["item_id"]})
                continue
            writer.add((row["corpus"],), out)
            per_corpus[row["corpus"]] += 1
            if export_png:
                dest = PNG_DIR / row["corpus"] / out["name"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(out["image"])
        writer.flush()
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - start
    SHARDS.mkdir(parents=True, exist_ok=True)  # a DVC output even when every file was quarantined
    write_csv(QUARANTINE, pd.DataFrame(quarantine, columns=["path", "corpus", "stage", "reason", "item_id"]))
    report = {"images": dict(per_corpus), "quarantined": len(quarantine), "shards": len(writer.written),
              "seconds": round(seconds, 2), "images_per_s": round(sum(per_corpus.values()) / max(seconds, 1e-9), 1),
              "workers": n_workers, "image_shape": metadata["image_shape"], "extras": writer.shapes}
    write_json(REPORT, report)
    print(f"render: {sum(per_corpus.values())} images ({', '.join(f'{k} {v}' for k, v in sorted(per_corpus.items()))})"
          f" in {len(writer.written)} shards, {len(quarantine)} quarantined, {seconds:.1f} s "
          f"({report['images_per_s']} images/s on {compute.describe(n_workers)})")
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
