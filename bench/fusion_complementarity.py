"""Does a fusion's spectrogram branch know something its functionals branch does not? Read from a crossval run's
predictions.csv (metrics/cv/ or bench/results/crossval/NAME/), per way of meeting the test speakers: how often
the branches agree, how often only one is right, and the UAR of the two fused with the image branch's weight w over
a grid of w (`--combine`: product, their weighted geometric mean, the default; or mean, w * image + (1 - w) *
functionals; pipeline.zoo.fusion.combine).

    python bench/fusion_complementarity.py bench/results/crossval/fusion/predictions.csv
    # another spectrogram model (its own crossval run, same folds) beside the same functionals branch:
    python bench/fusion_complementarity.py bench/results/crossval/fusion/predictions.csv \
        --image-run bench/results/crossval/cnn-avg/predictions.csv --image cnn

The w grid is scored on the TEST folds, in hindsight: it bounds what any fixed late-fusion weight could have
given on these folds, to tell whether the weight or the branch is the limit. It must never choose the weight
(crossval chooses it on validation speakers); the row the fusion actually got is printed beside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fusion_weight_policy import FEATURES, IMAGE, branch_table  # noqa: E402
from pipeline.zoo.fusion import COMBINES, DEFAULTS, combine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path, help="predictions.csv of a crossval run of the fusion")
    ap.add_argument("--image", default=IMAGE, help=f"system name of the image branch ({IMAGE!r})")
    ap.add_argument("--image-run", type=Path, help="take the image model's predictions from this crossval run's "
                    "predictions.csv (the same folds and seeds) instead")
    ap.add_argument("--features", default=FEATURES, help=f"system name of the features branch ({FEATURES!r})")
    ap.add_argument("--combine", choices=COMBINES, default=DEFAULTS["combine"],
                    help=f"how the w grid fuses the branches (default {DEFAULTS['combine']}, the product's default)")
    args = ap.parse_args()
    from pipeline.crossval import pooled_uar

    rows = pd.read_csv(args.predictions)
    if args.image_run:
        rows = pd.concat([rows[rows.system != args.image], pd.read_csv(args.image_run)], ignore_index=True)
    table, labels = branch_table(rows, args.image, args.features)
    weights = np.round(np.arange(0.0, 1.0001, 0.1), 2)
    print("| mode | clips | agree | only image right | only functionals right | both wrong | fusion (as chosen) | "
          + " | ".join(f"w={w:g}" for w in weights) + " |")
    print("|---" * (7 + len(weights)) + "|")
    for mode, part in table.groupby("mode", sort=False):
        fused = rows[(rows.system == "fusion") & (rows["mode"] == mode)] if not args.image_run else rows.iloc[:0]
        y = part.actual.to_numpy()
        pi, pf = np.stack(part.image), np.stack(part.features)
        ri, rf = pi.argmax(1), pf.argmax(1)
        right_i, right_f = np.array(labels)[ri] == y, np.array(labels)[rf] == y
        # crossval's own pooled UAR (each seed's folds together, then the mean over seeds)
        uar = lambda p: pooled_uar(part.assign(predicted=np.array(labels)[p.argmax(1)]), labels)  # noqa: E731
        chosen = pooled_uar(fused, labels) if len(fused) else float("nan")
        cells = [f"{np.mean(ri == rf):.3f}", f"{np.mean(right_i & ~right_f):.3f}", f"{np.mean(~right_i & right_f):.3f}",
                 f"{np.mean(~right_i & ~right_f):.3f}", f"{chosen:.3f}"]
        cells += [f"{uar(combine(w, pi, pf, args.combine)):.3f}" for w in weights]
        print(f"| {mode} | {len(y)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
