"""Benchmark: render's per-file work on the local process pool against a Dask LocalCluster, same files, one run.

    .venv/bin/python bench/bench_dask.py --files 1000 --workers 2 --out bench/results/dask.json

Synthesises `--files` speech-like 16 kHz WAVs of 1-4 s, builds render plan rows for them and maps
pipeline.render.render_item over them through pipeline.compute.imap: (a) the local pool of `--workers`
processes, (b) a distributed.LocalCluster of `--workers` single-threaded worker processes with
`compute.batch_files` files per task for each `--batches` value. The cluster is started (and its workers
warmed up on a few files) before the clock starts, as a long-running cluster would be; the local pool's
timing includes its fork. Both results are checked equal, row for row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_render import synth_utterance  # noqa: E402

from pipeline import render  # noqa: E402
from pipeline.compute import ComputeConfig, imap  # noqa: E402


def make_rows(folder: Path, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        path = folder / f"f{i:05d}.wav"
        sf.write(str(path), synth_utterance(rng, 16000, float(rng.uniform(1.0, 4.0))), 16000, subtype="PCM_16")
        rows.append({"path": str(path), "corpus": "demo", "display": "DEMO", "utt_id": f"u{i:05d}",
                     "label": "angry", "split": "train", "speaker": "demo:s", "gender": "female", "text_id": "t",
                     "item_id": f"demo_u{i:05d}", "augmented": False, "copy": 0, "augmentation": ""})
    return rows


def timed(rows, params, workers, compute=None) -> tuple[float, list]:
    start = time.perf_counter()
    out = list(imap(render.render_item, rows, workers, desc="bench", compute=compute, chunksize=8,
                    initializer=render._init_worker, initargs=(params,)))
    return time.perf_counter() - start, out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/dask.json")
    args = ap.parse_args(argv)

    from distributed import LocalCluster

    os.environ["TQDM_DISABLE"] = "1"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        rows = make_rows(Path(tmp), args.files)
        results = {}
        seconds, local = timed(rows, params, args.workers)
        results["local pool"] = {"workers": args.workers, "seconds": round(seconds, 2),
                                 "files_per_s": round(len(rows) / seconds, 1)}
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster:
            warm = ComputeConfig(cluster.scheduler_address, batch_files=1)
            timed(rows[:4 * args.workers], params, args.workers, warm)  # imports and caches on every worker
            for batch in args.batches:
                seconds, on_dask = timed(rows, params, args.workers,
                                         ComputeConfig(cluster.scheduler_address, batch_files=batch))
                assert [r.get("image") for r in on_dask] == [r.get("image") for r in local], "results differ"
                results[f"dask, {batch} files/task"] = {"workers": args.workers, "batch_files": batch,
                                                        "seconds": round(seconds, 2),
                                                        "files_per_s": round(len(rows) / seconds, 1)}
    report = {"files": args.files, "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "results": results}
    for name, r in results.items():
        print(f"{name:<22} {r['files_per_s']:>8} files/s  ({r['seconds']} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
