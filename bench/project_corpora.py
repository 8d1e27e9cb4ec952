"""Project what the seven supported corpora cost, from per-clip costs measured on this machine.

    python bench/bench_render.py --files 90 --sets real --repeat 3   # render: ms per clip, scaling over cores
    python bench/bench_fit_epoch.py --clips 1000                      # training: s per epoch of the spectrogram branch
    python bench/project_corpora.py --crossval-seconds 1045 --crossval-clips 454 --crossval-folds 10

Nothing here is timed: it reads bench/results/render.json and bench/results/fit_epoch.json (the two benches
above) and one measured cross-validation (its wall time, clips and folds: `--crossval-*`, from
bench/results/crossval/table.md), which calibrates the overhead around the spectrogram branch's epochs (the
functionals, scoring, loading) as a factor. The cost model, per corpus of N clips with params.yaml's recipe:

  render      N x (ms per clip, one process) / (cores x the pool's measured scaling)
  crossval    per seed, folds F (split.folds auto: at most 5 per corpus) x [a training on the training speakers
              (1 - 1/F - val_ratio of the clips) + with the refit, one on training and validation speakers
              (1 - 1/F)] x epochs x (s per clip-epoch) x the overhead factor
  final       one training on every clip

Other machines are projected, not measured: 16 cores as 8 `crossval.workers` of 2 cores each (folds at once;
assumed to scale as render's pool did here, not measured), one GPU as its 16 cores for render and, for training, the ratio measured on an H200 for EmoDB's
leave-one-speaker-out, fold at a time (docs/scaling.md: 313 s against 1,797 s on 2 cores; `--gpu-ratio`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# clips per corpus with the adapters' defaults (each corpus's published release): RAVDESS speech, CREMA-D, TESS, SAVEE,
# JL-Corpus's primary emotions without `excited` (about 4/5 of its 2,400 primary recordings), ESD's English
# speakers (10 x 5 emotions x 350), EmoDB
CORPORA = {"ravdess": 1440, "cremad": 7442, "tess": 2800, "savee": 480, "jl": 1920, "esd": 17500, "emodb": 535}
SPEAKERS = {"ravdess": 24, "cremad": 91, "tess": 2, "savee": 4, "jl": 4, "esd": 10, "emodb": 10}


def clip_epochs(n: int, folds: int, val_ratio: float, refit: bool, epochs: int) -> float:
    """Clip-epochs of one seed's cross-validation of n clips in `folds` speaker folds."""
    first = 1 - 1 / folds - val_ratio
    return folds * (first + ((1 - 1 / folds) if refit else 0)) * n * epochs


def hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--render-json", type=Path, default=ROOT / "bench/results/render.json")
    ap.add_argument("--fit-json", type=Path, default=ROOT / "bench/results/fit_epoch.json")
    ap.add_argument("--crossval-seconds", type=float, required=True, help="a measured crossval's wall time")
    ap.add_argument("--crossval-clips", type=int, required=True)
    ap.add_argument("--crossval-folds", type=int, required=True)
    ap.add_argument("--gpu-ratio", type=float, default=1797 / 313, help="2-core time / one GPU's, measured")
    ap.add_argument("--cores", type=int, default=16)
    args = ap.parse_args()
    for path, command in ((args.render_json, "bench/bench_render.py"), (args.fit_json, "bench/bench_fit_epoch.py")):
        if not path.exists():
            sys.exit(f"{path} is missing: run python {command} first (see --help)")
    render = json.loads(args.render_json.read_text())
    fit = json.loads(args.fit_json.read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    epochs, val_ratio = params["train"]["epochs"], params["split"]["val_ratio"]
    refit = params["crossval"]["refit"]
    seeds = len(params["crossval"]["seeds"])

    real = render["sets"]["real"]
    render_ms, render_cores, scaling = real["ours_1proc"]["ms_per_file_median"], render["cores"], real[
        "scaling_efficiency"]
    per_clip_epoch = fit["seconds_per_epoch"][list(fit["seconds_per_epoch"])[-1]] / fit["clips"]
    measured = clip_epochs(args.crossval_clips, args.crossval_folds, val_ratio, refit, epochs) * per_clip_epoch
    overhead = args.crossval_seconds / measured
    print(f"measured: render {render_ms} ms a clip on one process ({scaling:.0%} scaling on {render_cores}); "
          f"training {1000 * per_clip_epoch:.2f} ms a clip-epoch ({fit['clips']} clips, {fit['backend']}); "
          f"crossval overhead x{overhead:.2f} ({args.crossval_seconds:.0f} s for {args.crossval_clips} clips, "
          f"{args.crossval_folds} folds); {seeds} seed(s), {epochs} epochs, refit {refit}\n")
    print(f"| corpus | clips | folds | render, 2 cores | crossval, 2 cores | final, 2 cores | all, 2 cores | "
          f"all, {args.cores} cores (8 workers) | all, one GPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0]
    for name, n in CORPORA.items():
        folds = min(5, SPEAKERS[name])
        r = n * render_ms / 1000 / (render_cores * scaling)
        cv = seeds * clip_epochs(n, folds, val_ratio, refit, epochs) * per_clip_epoch * overhead
        final = n * epochs * per_clip_epoch * overhead
        train = cv + final
        wide = r * render_cores / args.cores + train / min(8, folds * seeds) / scaling
        gpu = r * render_cores / args.cores + train / args.gpu_ratio  # render on the GPU machine's cores
        totals = [totals[0] + r + train, totals[1] + wide, totals[2] + gpu]
        print(f"| {name} | {n:,} | {folds} | {hours(r)} | {hours(cv)} | {hours(final)} | {hours(r + train)} | "
              f"{hours(wide)} | {hours(gpu)} |")
    print(f"| **all seven** | {sum(CORPORA.values()):,} | | | | | **{hours(totals[0])}** | **{hours(totals[1])}** | "
          f"**{hours(totals[2])}** |")


if __name__ == "__main__":
    main()
