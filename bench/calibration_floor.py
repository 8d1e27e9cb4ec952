"""How far a cross-validation's expected calibration error (ECE) is from what a perfectly calibrated model would
show on the same number of clips, and whether fitting the temperature by ECE instead of likelihood helps.

    python bench/calibration_floor.py bench/results/crossval/fusion-g42 [--system fusion] [--draws 200]

For each way of meeting a speaker: the ECE crossval reports (temperatures by likelihood, pipeline/calibration.py),
the same with each temperature chosen by the lowest ECE on the same validation rows, and the ECE of labels drawn
from the calibrated probabilities themselves (a model that is calibrated by construction: the estimator's floor on
this many clips, mean and 95th percentile over draws). An ECE inside that floor cannot be told from calibrated.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a crossval output folder (predictions.csv, val_predictions.csv)")
    ap.add_argument("--system", default="fusion")
    ap.add_argument("--draws", type=int, default=200)
    args = ap.parse_args()
    from pipeline import calibration as cal

    pred = pd.read_csv(args.run / "predictions.csv")
    val = pd.read_csv(args.run / "val_predictions.csv")
    by_likelihood = cal.cv_calibration(pred, val, args.system)
    likelihood_fit = cal.fit_temperature

    def ece_fit(probs, actual) -> float:
        grid = np.arange(0.5, 4.0, 0.02)
        return float(min(grid, key=lambda t: cal.ece(cal.scaled(probs, t), actual))) if len(actual) else 1.0

    cal.fit_temperature = ece_fit  # calibrated_predictions looks it up at call time
    try:
        by_ece = cal.cv_calibration(pred, val, args.system)
    finally:
        cal.fit_temperature = likelihood_fit
    after = cal.calibrated_predictions(pred, val, args.system)
    classes = cal.classes_of(pred[pred["system"] == args.system])
    rng = np.random.default_rng(0)
    print("| way | clips | ECE, T by likelihood (crossval's) | ECE, T by lowest ECE | calibrated model's ECE on as many "
          "clips: mean / 95 % |\n|---|---|---|---|---|")
    for mode, rows in after.groupby("mode", sort=False):
        probs, _ = cal.probabilities(rows, classes)
        floor = [cal.ece(probs, np.array([rng.choice(len(classes), p=p / p.sum()) for p in probs]))
                 for _ in range(args.draws)]
        print(f"| {mode} | {len(probs)} | {by_likelihood[mode]['ece']:.3f} | {by_ece[mode]['ece']:.3f} | "
              f"{np.mean(floor):.3f} / {np.quantile(floor, 0.95):.3f} |")


if __name__ == "__main__":
    main()
