"""Stage 1, ingest: corpora under data/raw/ -> one manifest of usable utterances + a quarantine report.

Every audio file found is accounted for: kept (manifest), dropped (label mapped to nothing),
excluded (by an adapter option, e.g. RAVDESS song) or quarantined (with the reason).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.corpora import ADAPTER_NAMES, Entry, Excluded, Rejected, get_adapter
from pipeline.corpora.base import read_options, walk_audio
from pipeline.corpora.release import check_release
from pipeline.errors import ParamsError, UserError
from pipeline.files import raw_dir_from_params, require, scan
from pipeline.io import write_csv, write_json, write_parquet
from pipeline.params import load, number, section, workers
from pipeline.paths import DEMO_DIR, INGEST_SUMMARY, MANIFEST, QUARANTINE

log = logging.getLogger("pipeline.ingest")

MANIFEST_COLUMNS = ["utt_id", "corpus", "display", "speaker", "gender", "text_id", "original_label", "label",
                    "path", "duration", "sample_rate", "channels", "frames", "format", "subtype", "content_hash"]
QUARANTINE_COLUMNS = ["path", "corpus", "stage", "reason"]


@dataclass
class IngestConfig:
    raw_dir: Path
    demo_dir: Path
    corpora: list[str]
    label_maps: dict[str, dict[str, str | None]]
    options: dict[str, dict]
    min_duration: float
    silence_dbfs: float
    workers: int

    @classmethod
    def from_params(cls, params: dict) -> "IngestConfig":
        data = section(params, "data", keys=("raw_dir", "corpora", "label_map", "options", "min_duration",
                                             "silence_dbfs", "workers"))
        demo = section(params, "demo")  # out_dir (the demo stage's reader checks the section)
        corpora = data.get("corpora") or []
        if isinstance(corpora, str):
            corpora = [corpora]
        if not isinstance(corpora, list):
            raise ParamsError("data.corpora", f"must be a list of corpus names, got {corpora!r}")
        for name in corpora:
            if name not in ADAPTER_NAMES:
                raise ParamsError("data.corpora", f"unknown corpus {name!r}; known: {', '.join(ADAPTER_NAMES)}")
        label_maps = {}
        overrides = section(data, "label_map", prefix="data", keys=ADAPTER_NAMES, what="corpus")
        for name in ADAPTER_NAMES:
            label_maps[name] = dict(get_adapter(name).LABEL_MAP)
        for name, mapping in overrides.items():
            key = f"data.label_map.{name}"
            if not isinstance(mapping, dict):
                raise ParamsError(key, "must map original label -> target label or null")
            for original, target in mapping.items():
                original = str(original).lower()
                if original not in label_maps[name]:
                    known = ", ".join(sorted(label_maps[name]))
                    raise ParamsError(f"{key}.{original}", f"{name} has no label {original!r}; its labels: {known}")
                if target is not None and target not in TARGET_LABELS:
                    raise ParamsError(f"{key}.{original}",
                                      f"{target!r} is not a target label; allowed: {', '.join(TARGET_LABELS)}, null")
                label_maps[name][original] = target
        options = section(data, "options", prefix="data", keys=ADAPTER_NAMES, what="corpus")
        # each adapter's read_options (pipeline/corpora/base.py) says which options it takes and checks them
        merged_options = {name: read_options(get_adapter(name), section(options, name, prefix="data.options"))
                          for name in ADAPTER_NAMES}
        return cls(
            raw_dir=raw_dir_from_params(params),
            demo_dir=Path(demo.get("out_dir", DEMO_DIR)),
            corpora=corpora,
            label_maps=label_maps,
            options=merged_options,
            min_duration=number(data, "min_duration", "data", default=0.25, lo=0),
            silence_dbfs=number(data, "silence_dbfs", "data", default=-60.0, hi=0),
            workers=workers(data, "data"),
        )


def find_corpora(cfg: IngestConfig) -> tuple[dict[str, Path], bool]:
    """Corpus name -> root folder, every visible folder under raw_dir recognised by its layout (the
    adapters' detect()), whatever it is called. Returns (roots, used_demo): the demo corpus only when
    raw_dir holds nothing (hidden files and loose notes such as a README do not count)."""
    require(cfg.raw_dir, cfg.corpora)
    raw = scan(cfg.raw_dir)
    if raw.broken_links:
        link = raw.broken_links[0]
        raise UserError(f"{link} is a link to {os.readlink(link)}, which does not exist (a relative link is "
                        f"read from the folder the link is in, {cfg.raw_dir}/)")
    if raw.audio_files:
        names = ", ".join(p.name for p in raw.audio_files[:3]) + (" ..." if len(raw.audio_files) > 3 else "")
        raise UserError(f"audio files directly in {cfg.raw_dir}/ ({names}): put each corpus in a folder of its "
                        f"own, {cfg.raw_dir}/<corpus>/, as its archive unpacks")
    for folder in raw.empty_folders:
        log.warning("ignoring %s: no files in it", folder)
    for path in raw.other_files:
        log.info("ignoring %s: not a folder", path)
    found: dict[str, Path] = {}
    for folder in raw.folders:
        matches = detect_corpus(folder)
        if not matches:
            hint = _name_hint(folder.name)
            named = (f" (named like {hint}, but not laid out like it: {_layout(hint)})" if hint else "")
            raise UserError(f"{folder} is not a corpus the pipeline knows{named}. Unpack each corpus into its own "
                            f"folder under {cfg.raw_dir}/ as released (one wrapping folder is fine), or move this "
                            f"folder out. Known layouts:\n{_layouts()}")
        if len(matches) > 1:
            raise UserError(f"{folder} looks like several corpora ({', '.join(matches)}): give each corpus a "
                            f"folder of its own under {cfg.raw_dir}/")
        name = matches[0]
        if name in found:
            # Two roots would be walked as two corpora with one name (a second copy counted twice, speaker
            # ids shared); one folder holding both parts is what the adapters read and de-duplicate.
            raise UserError(f"{found[name]} and {folder} both look like {name}: put both parts in one folder "
                            f"under {cfg.raw_dir}/ (e.g. RAVDESS speech and song side by side) or remove the "
                            f"second copy")
        found[name] = folder
        log.info("%s: %s (recognised by its layout)", name, folder)
    for archive in raw.archives:
        log.warning("ignoring the archive %s: ingest reads unpacked folders", archive)
    if raw.archives and not found:
        raise UserError(f"{cfg.raw_dir}/ holds archives ({', '.join(p.name for p in raw.archives)}) but no "
                        f"unpacked corpus: unpack each into its own folder under {cfg.raw_dir}/")

    roots: dict[str, Path] = {}
    for name in cfg.corpora:
        if name in found:
            roots[name] = found[name]
        elif name == "demo":
            roots[name] = _demo_dir(cfg)
        else:
            raise UserError(f"data.corpora names {name!r} but no folder under {cfg.raw_dir}/ looks like it "
                            f"({_layout(name)}); unpack it there or remove it from data.corpora")
    for name in sorted(set(found) - set(roots)) if cfg.corpora else []:
        log.info("%s: %s not used (data.corpora names %s)", name, found[name], ", ".join(cfg.corpora))
    if cfg.corpora:
        return roots, roots.keys() == {"demo"}
    if found:
        return found, False
    log.info("no corpus in %s: using the built-in demo corpus (%s)", cfg.raw_dir, cfg.demo_dir)
    return {"demo": _demo_dir(cfg)}, True


def detect_corpus(folder: Path) -> list[str]:
    """Every adapter whose detect() accepts the folder; a name the folder hints at is asked first."""
    hint = _name_hint(folder.name)
    order = ([hint] if hint else []) + [n for n in ADAPTER_NAMES if n != hint]
    return [name for name in order if get_adapter(name).detect(folder)]


def _name_hint(folder_name: str) -> str | None:
    """The corpus a folder's name suggests (CREMA-D -> cremad, "TESS Toronto ..." -> tess), or None."""
    key = re.sub(r"[^a-z0-9]", "", folder_name.lower())
    return next((n for n in ADAPTER_NAMES if key.startswith(n)), None)


def _layout(name: str) -> str:
    return (get_adapter(name).__doc__ or name).strip().splitlines()[0]


def _layouts() -> str:
    return "\n".join(f"  {n}: {_layout(n)}" for n in ADAPTER_NAMES if n != "demo")


def _demo_dir(cfg: IngestConfig) -> Path:
    if not cfg.demo_dir.is_dir() or next(walk_audio(cfg.demo_dir), None) is None:
        # e.g. the demo stage ran while raw_dir held corpora and left only its SKIPPED.txt note
        raise UserError(f"no corpus in {cfg.raw_dir}/ and no demo corpus in {cfg.demo_dir}: run `dvc repro` "
                        f"(the demo stage makes it) or `python -m pipeline demo`")
    return cfg.demo_dir


def _inspect(job: tuple[str, float, float]) -> dict:
    """Worker: read one file's header and samples; return its facts or the reason to quarantine it."""
    from pipeline import audio

    path, min_duration, silence_dbfs = job
    digest = _sha256(path)  # also for a file quarantined below: the release check counts every file found
    try:
        info = audio.probe(path)
        samples, sr = audio.read(path)
        reason = audio.check(samples, sr, min_duration, silence_dbfs)
        if reason:
            return {"error": reason, "content_hash": digest}
        return {"sample_rate": int(sr), "channels": int(samples.shape[1]), "frames": int(samples.shape[0]),
                "duration": samples.shape[0] / float(sr), "format": info.get("format"),
                "subtype": info.get("subtype"), "content_hash": digest}
    except audio.AudioFormatError as exc:
        return {"error": str(exc), "content_hash": digest}
    except Exception as exc:  # one bad file never stops a run: quarantine whatever it raised
        return {"error": f"unreadable: {type(exc).__name__}: {exc}", "content_hash": digest}


def _sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _work(job: tuple) -> dict:
    """Worker: a file to keep is inspected; any other file found (dropped, excluded, quarantined by name)
    is only hashed, for the release check."""
    return _inspect(job) if len(job) == 3 else {"content_hash": _sha256(job[0])}


def run(params: dict) -> dict:
    cfg = IngestConfig.from_params(params)
    roots, used_demo = find_corpora(cfg)
    rows, quarantine = [], []
    summary: dict[str, dict] = {}
    pending: list[tuple[Entry, str]] = []
    others: list[Excluded | Rejected | Entry] = []  # found but not inspected: hashed only
    for name, root in roots.items():
        adapter = get_adapter(name)
        stats = {"root": str(root), "found": 0, "kept": 0, "dropped": Counter(), "excluded": 0,
                 "quarantined": Counter(), "labels": Counter()}
        summary[name] = stats
        seen_ids: set[str] = set()
        for item in adapter.prepare(root, cfg.options[name]):
            stats["found"] += 1
            waiting = len(pending)
            if isinstance(item, Excluded):
                stats["excluded"] += 1
            elif isinstance(item, Rejected):
                quarantine.append({"path": str(item.path), "corpus": name, "stage": "ingest", "reason": item.reason})
                stats["quarantined"]["unparseable name"] += 1
            elif item.original_label not in cfg.label_maps[name]:
                reason = f"unknown label {item.original_label!r}"
                quarantine.append({"path": str(item.path), "corpus": name, "stage": "ingest", "reason": reason})
                stats["quarantined"]["unknown label"] += 1
            elif cfg.label_maps[name][item.original_label] is None:
                stats["dropped"][item.original_label] += 1
            elif item.utt_id in seen_ids:
                reason = f"duplicate utterance id {item.utt_id!r}"
                quarantine.append({"path": str(item.path), "corpus": name, "stage": "ingest", "reason": reason})
                stats["quarantined"]["duplicate id"] += 1
            else:
                seen_ids.add(item.utt_id)
                pending.append((item, cfg.label_maps[name][item.original_label]))
            if len(pending) == waiting:
                others.append(item)
        log.info("%s: %d audio files found in %s", name, stats["found"], root)

    from pipeline.compute import ComputeConfig, imap

    jobs = [(str(e.path), cfg.min_duration, cfg.silence_dbfs) for e, _ in pending]
    jobs += [(str(item.path),) for item in others]
    results = list(imap(_work, jobs, cfg.workers, desc="ingest: reading audio", chunksize=16,
                        compute=ComputeConfig.from_params(params)))
    hashes: dict[str, list[tuple[Path, str | None]]] = {name: [] for name in roots}
    for item, facts in zip(others, results[len(pending):], strict=True):
        hashes[item.corpus].append((item.path, facts["content_hash"]))
    for (entry, label), facts in zip(pending, results[:len(pending)], strict=True):
        stats = summary[entry.corpus]
        hashes[entry.corpus].append((entry.path, facts.get("content_hash")))
        if "error" in facts:
            quarantine.append({"path": str(entry.path), "corpus": entry.corpus, "stage": "ingest",
                               "reason": facts["error"]})
            stats["quarantined"][facts["error"].split(":")[0].split(" (")[0]] += 1
            continue
        stats["kept"] += 1
        stats["labels"][label] += 1
        rows.append({"utt_id": entry.utt_id, "corpus": entry.corpus, "display": get_adapter(entry.corpus).DISPLAY,
                     "speaker": entry.speaker, "gender": entry.gender, "text_id": entry.text_id,
                     "original_label": entry.original_label, "label": label, "path": str(entry.path), **facts})

    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    manifest = manifest.sort_values(["corpus", "utt_id"], kind="stable").reset_index(drop=True)
    duplicates = _duplicate_groups(manifest)
    write_parquet(MANIFEST, manifest)
    write_csv(QUARANTINE, pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS))
    releases = {name: check_release(name, roots[name], hashes[name]).summary() for name in roots}
    report = _report(summary, manifest, duplicates, used_demo, releases)
    write_json(INGEST_SUMMARY, report)
    print(format_table(report))
    if manifest.empty:
        raise UserError(f"no usable utterance: all {report['total']['found']} files were dropped, excluded or "
                        f"quarantined; see {QUARANTINE}")
    return report


def _duplicate_groups(manifest: pd.DataFrame) -> list[list[str]]:
    """Byte-identical recordings (real releases contain some): split keeps each group together."""
    groups = manifest.groupby("content_hash")["path"].apply(list)
    dup = [sorted(g) for g in groups if len(g) > 1]
    for g in dup:
        log.warning("byte-identical recordings (kept together in one split): %s", ", ".join(g))
    return dup


def _report(summary: dict, manifest: pd.DataFrame, duplicates: list, used_demo: bool,
            releases: dict[str, dict] | None = None) -> dict:
    corpora = {}
    total = Counter()
    for name, s in summary.items():
        q = sum(s["quarantined"].values())
        d = sum(s["dropped"].values())
        corpora[name] = {"found": s["found"], "kept": s["kept"], "dropped": d, "excluded": s["excluded"],
                         "quarantined": q, "dropped_by_label": dict(s["dropped"]),
                         "quarantined_by_reason": dict(s["quarantined"]), "kept_by_label": dict(s["labels"]),
                         "speakers": int(manifest.loc[manifest.corpus == name, "speaker"].nunique()),
                         "release": (releases or {}).get(name, {})}
        assert s["found"] == s["kept"] + d + s["excluded"] + q, f"{name}: files unaccounted for"
        total.update({k: corpora[name][k] for k in ("found", "kept", "dropped", "excluded", "quarantined")})
    return {"used_demo": used_demo, "corpora": corpora, "total": dict(total),
            "duplicate_groups": len(duplicates), "duplicate_files": sum(len(g) for g in duplicates),
            "hours": round(float(manifest["duration"].sum()) / 3600, 3) if len(manifest) else 0.0}


def format_table(report: dict) -> str:
    labels = list(TARGET_LABELS)
    head = ["corpus"] + labels + ["kept", "dropped", "excluded", "quarantined", "found"]
    lines = [head]
    for name, c in report["corpora"].items():
        lines.append([name] + [str(c["kept_by_label"].get(lab, 0)) for lab in labels]
                     + [str(c[k]) for k in ("kept", "dropped", "excluded", "quarantined", "found")])
    t = report["total"]
    by_label = Counter()
    for c in report["corpora"].values():
        by_label.update(c["kept_by_label"])
    lines.append(["total"] + [str(by_label.get(lab, 0)) for lab in labels]
                 + [str(t.get(k, 0)) for k in ("kept", "dropped", "excluded", "quarantined", "found")])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
           for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    extra = [f"release check, {name}: {c['release']['verdict']}"
             for name, c in report["corpora"].items() if c.get("release")]
    if report["used_demo"]:
        extra.append("(no corpus in data/raw/: this run used the built-in demo corpus)")
    if report["duplicate_groups"]:
        extra.append(f"{report['duplicate_files']} byte-identical files in {report['duplicate_groups']} groups "
                     f"(kept; split puts each group in one split)")
    if t.get("quarantined"):
        extra.append(f"quarantined files and reasons: {QUARANTINE}")
    return "\n".join(out + extra)


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline ingest", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
