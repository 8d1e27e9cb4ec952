"""Benchmark: the default render's openSMILE, today's way (process_signal, a new openSMILE instance per clip)
against one reused instance per feature set and rate (features.ReusedSmile), on the same real clips in one run.

    .venv/bin/python bench/bench_opensmile.py --files 100 --rounds 5

Real speech: the first --files EmoDB recordings of ../shared/corpora/emodb/wav (every --stride-th file; the
copy is 22.05 kHz, 2.0 s each). One process, BLAS pinned to one thread, both ways warmed up (imports, the first
instances and their probes) before timing. Each round times a slice of the clips both ways, taking turns which
goes first, so the machine's other work hits both alike. Per clip:

  render   what the render stage computes for a clip it has not seen (render.render_item) with params.yaml's
           recipe: read, the speech, the window, the image and the kinds render.needed_kinds names (the
           default fused recipe: the image, ComParE over the 16-kHz speech, eGeMAPS over the recording);
  compare  ComParE 2016 over the speech alone (features.smile_functionals);
  egemaps  eGeMAPSv02 over the recording alone;

and checks that both ways give the same outputs to the last bit. Prints a markdown table (median ms per clip,
the ratio of the medians, and of the total times) and writes JSON to --out.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

EMODB = ROOT.parent / "shared" / "corpora" / "emodb" / "wav"
WAYS = ("today", "reused")
PARTS = ("render", "compare", "egemaps")


def _clip_times(paths: list[Path], params: dict, way: str, times: dict, outputs: dict) -> None:
    """Times each part for each clip the `way` way; keeps the outputs to compare the ways."""
    from pipeline import features, render
    from pipeline.speech import recording_of, speech_of

    features.REUSE_SMILE_INSTANCE = way == "reused"
    acfg = render._STATE["audio"]
    kinds = ("image",) + tuple(render._STATE["features"].extra)
    for path in paths:
        row = {"path": str(path), "augmentation": "", "augmented": False}
        t0 = time.perf_counter()
        out = render.render_item((row, kinds))["outputs"]
        t1 = time.perf_counter()
        recording = recording_of(path)
        speech = speech_of(path, acfg, "", recording)
        t2 = time.perf_counter()
        compare = features.smile_functionals(speech, acfg.sample_rate, "compare")
        t3 = time.perf_counter()
        egemaps = features.smile_functionals(*recording, "egemaps")
        t4 = time.perf_counter()
        times[way]["render"].append(t1 - t0)
        times[way]["compare"].append(t3 - t2)
        times[way]["egemaps"].append(t4 - t3)
        outputs.setdefault(path.name, {})[way] = dict(out, compare_alone=compare, egemaps_alone=egemaps)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (a[k] == b[k]) if isinstance(a[k], bytes) else np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes()
        for k in a)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100, help="EmoDB clips (default 100)")
    ap.add_argument("--stride", type=int, default=5, help="every stride-th file of the corpus (default 5)")
    ap.add_argument("--rounds", type=int, default=5, help="slices of the clips the ways take turns on")
    ap.add_argument("--corpus", default=str(EMODB), help="a folder of WAV files (default: the shared EmoDB copy)")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--out", default="bench/results/opensmile.json")
    args = ap.parse_args(argv)

    from pipeline import features, render
    from pipeline.features import pin_threads

    pin_threads()
    import opensmile

    params = yaml.safe_load(Path(args.params).read_text())
    render._init_worker(params)
    paths = sorted(Path(args.corpus).glob("*.wav"))[::args.stride][:args.files]
    if not paths:
        sys.exit(f"no WAV files in {args.corpus}")
    times = {way: {part: [] for part in PARTS} for way in WAYS}
    outputs: dict = {}
    for way in WAYS:  # warm up: imports, caches, the first instances and their probes
        _clip_times(paths[:2], params, way, {w: {p: [] for p in PARTS} for w in WAYS}, {})
    outputs.clear()
    slices = np.array_split(np.arange(len(paths)), args.rounds)
    for r, idx in enumerate(slices):
        for way in (WAYS if r % 2 == 0 else WAYS[::-1]):
            _clip_times([paths[i] for i in idx], params, way, times, outputs)
    identical = all(_same(o["today"], o["reused"]) for o in outputs.values())

    rows = []
    for part in PARTS:
        med = {way: 1e3 * float(np.median(times[way][part])) for way in WAYS}
        tot = {way: float(np.sum(times[way][part])) for way in WAYS}
        rows.append({"part": part, "today_ms": med["today"], "reused_ms": med["reused"],
                     "ratio_median": med["today"] / med["reused"], "ratio_total": tot["today"] / tot["reused"]})
    kinds = ("image",) + tuple(render._STATE["features"].extra)
    result = {"files": len(paths), "corpus": args.corpus, "rounds": args.rounds, "kinds": kinds,
              "identical": identical, "opensmile": opensmile.__version__, "python": platform.python_version(),
              "cpu": platform.processor() or platform.machine(), "rows": rows}
    print(f"{len(paths)} clips of {args.corpus}; render kinds {', '.join(kinds)}; opensmile {opensmile.__version__}")
    print("| per clip | today: process_signal, ms (median) | reused instance, ms (median) | today / reused "
          "(medians) | (totals) |")
    print("|---|---|---|---|---|")
    names = {"render": "the default render (" + " + ".join(kinds) + ")",
             "compare": "ComParE 2016 over the speech alone", "egemaps": "eGeMAPSv02 over the recording alone"}
    for row in rows:
        print(f"| {names[row['part']]} | {row['today_ms']:.1f} | {row['reused_ms']:.1f} | "
              f"{row['ratio_median']:.2f}x | {row['ratio_total']:.2f}x |")
    print(f"outputs identical to the last bit, every clip and kind: {'yes' if identical else 'NO'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    features.REUSE_SMILE_INSTANCE = True
    return result


if __name__ == "__main__":
    main()
