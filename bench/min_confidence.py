"""What `predict --min-confidence P` leaves: for each P, the share of files answered (the rest `uncertain`) and
the UAR over them, with the probabilities calibrated as crossval calibrates them (pipeline/calibration.py), from
a cross-validation's test predictions (its --out folder, or metrics/cv).

    python bench/min_confidence.py bench/results/crossval/fusion-g42 [--modes transductive cold]

Prints a markdown table: per way of meeting a speaker and P, coverage and UAR (pooled over the folds' files,
the mean over seeds).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THRESHOLDS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a crossval --out folder (predictions.csv, val_predictions.csv)")
    ap.add_argument("--modes", nargs="+", default=["transductive", "cold"])
    ap.add_argument("--system", help="default: the run's model")
    args = ap.parse_args()
    from pipeline.calibration import calibrated_predictions, classes_of
    from pipeline.crossval import pooled_uar

    summary = json.loads((args.run / "summary.json").read_text())
    system = args.system or next(s for s in summary["systems"] if s != "baseline_egemaps_svm"
                                 and not s.endswith("(fusion branch)"))
    pred = calibrated_predictions(pd.read_csv(args.run / "predictions.csv"),
                                  pd.read_csv(args.run / "val_predictions.csv"), system)
    labels = summary["labels"]
    columns = [f"p_{c}" for c in classes_of(pred)]
    confidence = pred[columns].max(axis=1).to_numpy()
    print(f"{args.run} ({system}): coverage / UAR over the files answered, calibrated probabilities")
    print("| way | " + " | ".join(f"P = {p}" for p in THRESHOLDS) + " |")
    print("|---|" + "---|" * len(THRESHOLDS))
    for mode in args.modes:
        rows = (pred["mode"] == mode).to_numpy()
        cells = []
        for p in THRESHOLDS:
            answered = rows & (confidence >= p)
            cells.append(f"{answered.sum() / rows.sum():.0%} / {pooled_uar(pred[answered], labels):.3f}"
                         if answered.any() else "0 %")
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
