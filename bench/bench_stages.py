"""Benchmark: peak memory and time of the data stages (ingest, split, balance, render) against corpus size.

    .venv/bin/python bench/bench_stages.py --sizes 1000 4000 16000 --out bench/results/stages.json

For each size, synthesises a corpus of distinct speech-like WAV files in the demo corpus's layout
(16 speakers x 7 emotions, 1-4 s at 16 kHz) in a temp copy of the project, runs each data stage as
`python -m pipeline <stage>` and samples the summed RSS of the stage's process tree (main + workers)
every 50 ms. Shards are streamed, so render's peak should stay flat as the corpus grows.
Also reports whether the stage imported TensorFlow or Keras (it must not: seconds and hundreds of MB).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_render import synth_utterance  # noqa: E402

EMOTIONS = ("angry", "happy", "sad", "neutral", "fearful", "disgust", "surprise")
STAGES = ("ingest", "split", "balance", "render")


def make_demo_layout(root: Path, n_files: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    speakers = [f"m{i}" for i in range(8)] + [f"f{i}" for i in range(8)]
    for i in range(n_files):
        spk = speakers[i % len(speakers)]
        emo = EMOTIONS[(i // len(speakers)) % len(EMOTIONS)]
        k = i // (len(speakers) * len(EMOTIONS))
        folder = root / spk
        folder.mkdir(parents=True, exist_ok=True)
        y = synth_utterance(rng, 16000, float(rng.uniform(1.0, 4.0)))
        sf.write(str(folder / f"{spk}_{emo}_{k:02d}.wav"), y, 16000, subtype="PCM_16")


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_stage(stage: str, cwd: Path) -> dict:
    code = ("import runpy, sys; sys.argv=['pipeline', %r]; "
            "from pipeline.cli import main; rc = main([%r]); "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "print('HEAVY_IMPORTS=' + ','.join(bad), file=sys.stderr); sys.exit(rc)") % (stage, stage)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{stage} failed:\n{err[-3000:]}")
    heavy = [line.split("=", 1)[1] for line in err.splitlines() if line.startswith("HEAVY_IMPORTS=")]
    return {"seconds": round(time.perf_counter() - start, 2), "peak_rss_mb": round(peak / 2**20, 1),
            "imports_tensorflow_or_keras": bool(heavy and heavy[0])}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    ap.add_argument("--out", default=str(ROOT / "bench/results/stages.json"))
    args = ap.parse_args(argv)
    results = {"cpus": os.cpu_count(), "sizes": {}}
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench_stages_") as tmp:
            work = Path(tmp)
            shutil.copy(ROOT / "params.yaml", work / "params.yaml")
            params = yaml.safe_load((work / "params.yaml").read_text())
            params["data"]["corpora"] = ["demo"]
            params["demo"]["out_dir"] = "data/demo"
            (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            t0 = time.perf_counter()
            make_demo_layout(work / "data/demo", n)
            print(f"{n} files synthesised in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            results["sizes"][n] = {stage: run_stage(stage, work) for stage in STAGES}
            print(json.dumps({n: results["sizes"][n]}), file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print("| stage | " + " | ".join(f"{n} files: s / peak MB" for n in args.sizes) + " |")
    print("|---|" + "---|" * len(args.sizes))
    for stage in STAGES:
        cells = [f"{results['sizes'][n][stage]['seconds']} / {results['sizes'][n][stage]['peak_rss_mb']}"
                 for n in args.sizes]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    heavy = [s for n in args.sizes for s in STAGES if results["sizes"][n][s]["imports_tensorflow_or_keras"]]
    print("TensorFlow/Keras imported by: " + (", ".join(sorted(set(heavy))) or "no data stage"))
    return results


if __name__ == "__main__":
    main()
