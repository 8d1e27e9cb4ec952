"""Score the fold models a cross-validation kept (`python -m pipeline crossval --keep-models DIR`, or
bench/crossval_grid.py's runs with crossval.refit=false) again under other serving policies, without training:
how a stranger's file is normalised (train.normalisation_cold: population | clip) changes only the card, so the
same models answer for each policy, on the validation speakers (to choose by) and the test speakers.

    python bench/rescore_cold.py DIR "split.folds=10|crossval.refit=false" --cold population clip

Policies that need fitted parts (`gender`: each gender's statistics and the classifier; `clip`: shrinkage's k)
can be scored only on models trained with them in the card: train with train.normalisation_cold=gender, then
score population, clip and gender from the same models. With the refit, the validation speakers are scored by
the kept model of step 1 (fold<k>_seed<s>/first/). The params (params.yaml with the `-S`-style overrides, as bench/crossval_grid.py takes them) must be those of the
run that kept the models (its folds and validation draw). Prints pooled UAR per policy, way of meeting a speaker,
system (the model and each fusion branch) and part (val / test), mean over the seeds, and writes the table to
DIR/rescore.md.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, help="the folder of fold<k>_seed<s>/ model.keras + card.json")
    ap.add_argument("overrides", help="key=value|key=value... of the run that kept the models")
    ap.add_argument("--cold", nargs="+", default=["population", "clip"],
                    help="cold policies to score: one for every input, or per input (image:clip,compare:gender)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kept_models import fold_parts, load

    from pipeline import crossval
    from pipeline.backend import quiet_tensorflow
    from pipeline.cli import setup_logging

    setup_logging()
    quiet_tensorflow()
    params, data = load(args.overrides)
    from pipeline.train import TrainConfig

    branches = [None, *TrainConfig.from_params(params).branches]  # the model, then each fusion branch alone
    labels = [lab for lab in crossval.TARGET_LABELS if lab in set(data.labels)]
    rows = []
    # the validation speakers met the model of step 1 (kept in first/ when the run refit), the test speakers the
    # model scored on them (kept_models.fold_parts)
    for k, seed, part_name, part, model, card in fold_parts(args.models, params, data):
        classes = card["labels"]
        for policy in args.cold:
            mine = copy.deepcopy(card)
            for kind, spec in mine["inputs"].items():  # one policy, or per input: image:clip,compare:gender
                per_kind = dict(p.split(":") for p in policy.split(",")) if ":" in policy else {}
                spec["normalisation"]["cold"] = per_kind.get(kind, policy)
            for kind in branches:
                for mode, (scored, probs) in crossval.score_modes(crossval.scorer(model, kind), mine, part,
                                                                  seed).items():
                    predicted = np.asarray(classes)[probs.argmax(axis=1)]
                    rows.append(crossval.prediction_frame(kind or params["model"], mode, k, seed,
                                                          part.subset(scored), predicted).assign(
                        policy=policy, part=part_name))
    pred = pd.concat(rows, ignore_index=True)
    table = ["| policy | part | system | " + " | ".join(crossval.MODE_NOTES) + " |",
             "|---|---|---|" + "---|" * len(crossval.MODE_NOTES)]
    for (policy, part_name, system), g in pred.groupby(["policy", "part", "system"], sort=False):
        cells = []
        for mode in crossval.MODE_NOTES:
            m = g[g["mode"] == mode]
            cells.append(f"{crossval.pooled_uar(m, labels):.3f}" if len(m) else "")
        table.append(f"| {policy} | {part_name} | {system} | " + " | ".join(cells) + " |")
    text = "\n".join(table) + "\n"
    (args.models / "rescore.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
