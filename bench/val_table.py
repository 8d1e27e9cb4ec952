"""Pooled validation UAR per system and way of meeting a speaker, from cross-validation runs' val_predictions.csv
(the validation speakers as each fold's model of step 1 met them): the figures settings are chosen by.

    python bench/val_table.py bench/results/crossval/f-base bench/results/crossval/f-gender [--test]

Per run, system (the model and each fusion branch) and way: all folds' validation predictions of a seed
pooled, then the mean over the seeds (as crossval pools its test folds); `--test` adds the same from
predictions.csv, the test folds (read after a choice, never to make it). Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="crossval --out folders (bench/results/crossval/NAME)")
    ap.add_argument("--test", action="store_true", help="also the test folds' pooled UAR")
    args = ap.parse_args()
    from pipeline.crossval import MODE_NOTES, pooled_uar

    modes = list(MODE_NOTES)
    lines = ["| run | system | part | " + " | ".join(modes) + " |", "|---|---|---|" + "---|" * len(modes)]
    for run in args.runs:
        labels = json.loads((run / "summary.json").read_text())["labels"]
        parts = [("val", "val_predictions.csv")] + ([("test", "predictions.csv")] if args.test else [])
        for part, name in parts:
            if not (run / name).exists():
                continue
            pred = pd.read_csv(run / name)
            for system, g in pred.groupby("system", sort=False):
                cells = [f"{pooled_uar(g[g['mode'] == m], labels):.3f}" if (g["mode"] == m).any() else ""
                         for m in modes]
                lines.append(f"| {run.name} | {system} | {part} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
