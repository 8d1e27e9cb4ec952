"""Cross-validate several recipes on the corpora already rendered in data/processed (shards + manifest), one
after another, each with params.yaml plus `-S`-style overrides, and print one results table.

    python bench/crossval_grid.py "functionals" "functionals|train.speaker_norm=false" \
        "cnn_blstm_attention|model=cnn_blstm_attention|train.schedule=plateau|train.epochs=20|crossval.refit=false"

Each argument is NAME|key=value|key=value...; values are YAML (`split.folds=10`, `crossval.seeds=[1,2,3]`).
Each run writes what the crossval stage writes, under bench/results/crossval/NAME/ (cv.json, folds.csv,
predictions.csv, summary.json, the pictures of pipeline/cv_pictures.py, report.md), and the table (every system and mode:
transductive, enrolled 5 / 10, cold) goes to bench/results/crossval/table.md with the wall time of each run. The same figures come from the pipeline with
`dvc exp run -S ...` (the crossval stage); this script skips the single-split train/evaluate stages.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path("bench/results/crossval")


def apply(params: dict, assignment: str) -> None:
    key, _, value = assignment.partition("=")
    node = params
    *path, last = key.split(".")
    for part in path:
        node = node.setdefault(part, {})
    node[last] = yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="+", help="NAME|key=value|...")
    ap.add_argument("--keep-models", action="store_true",
                    help="also keep each fold model in bench/results/crossval/NAME/models/ (bench/rescore_cold.py)")
    args = ap.parse_args()
    from pipeline import crossval
    from pipeline.cli import setup_logging
    from pipeline.params import check_all

    setup_logging()
    base = yaml.safe_load(Path("params.yaml").read_text())
    rows = []
    for recipe in args.recipes:
        name, *assignments = recipe.split("|")
        params = copy.deepcopy(base)
        for a in assignments:
            apply(params, a)
        check_all(params)
        out = OUT / name
        start = time.perf_counter()
        crossval.run(params, out=out, save_models=out / "models" if args.keep_models else None)
        seconds = time.perf_counter() - start
        summary = yaml.safe_load((out / "summary.json").read_text())["systems"]
        for system, modes in summary.items():
            for mode, entry in modes.items():
                h = entry["headline"]
                lo, hi = h["uar_pooled_ci95"]
                mine = system == params["model"]
                rows.append(f"| {name if mine else system} | {mode} | {' '.join(assignments) if mine else '(same folds)'} | "
                            f"{h['folds']} x {h['seeds']} | {h['uar_mean']:.3f} ± {h['uar_std']:.3f} | "
                            f"{h['uar_pooled']:.3f} [{lo:.3f}, {hi:.3f}] | {h['macro_f1_mean']:.3f} | "
                            f"{h.get('val_uar_mean', '')} | {f'{seconds:.0f} s' if mine and mode == 'transductive' else ''} |")
        table = ["| recipe | mode | params | folds x seeds | UAR mean ± std | UAR pooled [95 % CI] | macro-F1 "
                 "| val UAR | wall time |", "|---|---|---|---|---|---|---|---|---|"] + rows
        (OUT / "table.md").write_text("\n".join(table) + "\n")
        print("\n".join(table), flush=True)


if __name__ == "__main__":
    main()
