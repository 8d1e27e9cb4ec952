"""Stage 3, balance: the render plan, one row per image to render.

Training split only: `none`, `undersample` (every class down to the rarest, or to `target`) or
`oversample` (every class up to the largest, or to `target`, cycling through the class's files in a
seeded order; each extra copy augmented). A class above the target keeps a seeded random subset of its
files (not the first ones by id, which would drop whole corpora in alphabetical order). Val and test
pass through untouched: augmenting or resampling them would make the reported figures meaningless.
The augmentation parameters of each copy are drawn here from a seed derived from the params seed and
the copy's id, and recorded in the plan; render applies them to the standardised source.
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.augment import Augmenter
from pipeline.errors import UserError
from pipeline.io import write_json, write_parquet
from pipeline.params import choice, load, number, section
from pipeline.paths import BALANCE_SUMMARY, RENDER_PLAN, SPLIT_FILE
from pipeline.seeding import stable_rng

log = logging.getLogger("pipeline.balance")

METHODS = ("none", "undersample", "oversample")


def settings(params: dict) -> tuple[str, int | None, int, Augmenter]:
    """(method, target, seed, augmenter) from `balance` and `augment`; ParamsError names a bad key."""
    b = section(params, "balance", keys=("method", "target", "seed"))
    method = choice(b, "method", "balance", METHODS, default="none")
    target = number(b, "target", "balance", default=None, lo=1, integer=True, allow_none=True)
    seed = number(b, "seed", "balance", default=42, integer=True)
    return method, target, seed, Augmenter.from_params(params)  # checked even when unused


def plan(split_df: pd.DataFrame, params: dict) -> pd.DataFrame:
    method, target, seed, augmenter = settings(params)

    df = split_df.copy()
    df["item_id"] = df["corpus"] + "_" + df["utt_id"]
    df["augmented"] = False
    df["copy"] = 0
    df["augmentation"] = ""
    train = df[df["split"] == "train"]
    rest = df[df["split"] != "train"]
    if method == "none" or train.empty:
        return df.sort_values(["split", "corpus", "item_id"]).reset_index(drop=True)

    counts = train["label"].value_counts()
    parts = []
    if method == "undersample":
        n = target or int(counts.min())  # classes smaller than a given target keep all their files
        for label, group in train.groupby("label"):
            parts.append(_subset(group, n, stable_rng(seed, "undersample", label)))
    else:
        n = target or counts.max()
        for label, group in train.groupby("label"):
            rng = stable_rng(seed, "oversample", label)
            group = _subset(group, n, rng)  # the originals (a random subset when above the target)
            parts.append(group)
            order = rng.permutation(len(group))  # which files get the first copies: none by name
            rows = []
            for k in range(max(0, n - len(group))):
                src = group.iloc[order[k % len(group)]].copy()
                copy = k // len(group) + 1
                src["item_id"] = f"{src['item_id']}_aug{copy:02d}"
                src["augmented"] = True
                src["copy"] = copy
                src["augmentation"] = json.dumps(augmenter.sample(seed, src["item_id"]), sort_keys=True)
                rows.append(src)
            if rows:
                parts.append(pd.DataFrame(rows))
    out = pd.concat(parts + [rest], ignore_index=True)
    return out.sort_values(["split", "corpus", "item_id"]).reset_index(drop=True)


def _subset(group: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """All of a class's files when it has at most n, else a random n of them drawn from rng; in id order."""
    group = group.sort_values("item_id")
    if len(group) <= n:
        return group
    return group.iloc[np.sort(rng.choice(len(group), size=n, replace=False))]


def summarise(plan_df: pd.DataFrame, params: dict) -> dict:
    b = section(params, "balance")
    train = plan_df[plan_df["split"] == "train"]
    table = pd.crosstab(train["label"], train["augmented"]).reindex(index=list(TARGET_LABELS), fill_value=0)
    return {"method": b.get("method", "none"),
            "train_by_label": {lab: {"original": int(table.loc[lab].get(False, 0)),
                                     "augmented": int(table.loc[lab].get(True, 0))} for lab in table.index},
            "rows_by_split": {k: int(v) for k, v in plan_df["split"].value_counts().items()}}


# The plan says what to render, not where it goes: without these columns a new fold or split seed leaves
# the plan byte-identical (with method none), so DVC does not re-render; train joins split.parquet instead.
SPLIT_COLUMNS = ("split", "fold")


def run(params: dict) -> pd.DataFrame:
    if not SPLIT_FILE.exists():
        raise UserError(f"{SPLIT_FILE} not found: run the split stage first (dvc repro split)")
    plan_df = plan(pd.read_parquet(SPLIT_FILE), params)
    to_render = plan_df.drop(columns=[c for c in SPLIT_COLUMNS if c in plan_df.columns])
    write_parquet(RENDER_PLAN, to_render.sort_values(["corpus", "item_id"]).reset_index(drop=True))
    summary = summarise(plan_df, params)
    write_json(BALANCE_SUMMARY, summary)
    lines = [f"balance: method {summary['method']}; training images per label (original + augmented):"]
    lines += [f"  {lab:<9} {v['original']:>6} + {v['augmented']:>6}" for lab, v in summary["train_by_label"].items()]
    lines.append("  rows to render per split: " + ", ".join(f"{k} {v}" for k, v in
                                                             sorted(summary["rows_by_split"].items())))
    print("\n".join(lines))
    return plan_df


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline balance", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
