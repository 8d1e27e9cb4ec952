"""Stage 3, balance: the render plan, one row per image to render.

Every original utterance is rendered, whatever the balancing: undersampling is a selection the train stage
and crossval make at training time (pipeline.balancing), so balancing never changes a test set, and switching
between none and undersample leaves the plan, and so the shards, as they are. Oversampling adds augmented
copies of training files: the plan holds every copy that any training set will ask for, the train stage's
training split and, with speaker folds, each cross-validation fold's training speakers (and training +
validation speakers, for crossval's refit). A copy's id and augmentation derive from balance.seed and its
source's id alone, so a copy wanted by several folds is one rendered row. Val and test are never augmented or
resampled: that would make the reported figures meaningless. The augmentation parameters of each copy are
drawn here from a seed derived from the params seed and the copy's id, and recorded in the plan; render
applies them to the standardised source.
"""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.augment import Augmenter
from pipeline.balancing import METHODS, BalanceConfig  # noqa: F401 (METHODS: the choices, for callers)
from pipeline.errors import UserError
from pipeline.io import write_json, write_parquet
from pipeline.params import boolean, load, section
from pipeline.paths import BALANCE_SUMMARY, RENDER_PLAN, SPLIT_FILE

log = logging.getLogger("pipeline.balance")


def settings(params: dict) -> tuple[str, int | None, int, Augmenter]:
    """(method, target, seed, augmenter) from `balance` and `augment`; ParamsError names a bad key."""
    cfg = BalanceConfig.from_params(params)
    return cfg.method, cfg.target, cfg.seed, Augmenter.from_params(params)  # checked even when unused


def training_sets(split_df: pd.DataFrame, params: dict) -> list[tuple[str, np.ndarray]]:
    """(name, row mask) of every training set the train stage, crossval and the final fit will balance: the
    training split, every labelled row (the final fit: the model predict ships), and with speaker folds each
    fold's training speakers, plus training + validation speakers when crossval refits (crossval.refit)."""
    from pipeline.split import SplitConfig, fold_splits

    sets = [("train split", (split_df["split"] == "train").to_numpy()),
            ("final fit", split_df["label"].notna().to_numpy())]
    cfg = SplitConfig.from_params(params)
    if cfg.strategy == "speaker" and cfg.folds:
        refit = boolean(section(params, "crossval"), "refit", "crossval", True)
        manifest = split_df.drop(columns=[c for c in SPLIT_COLUMNS if c in split_df.columns])
        for k, split in enumerate(fold_splits(manifest, cfg)):
            sets.append((f"fold {k}", (split == "train").to_numpy()))
            if refit:
                sets.append((f"fold {k} refit", split.isin(["train", "val"]).to_numpy()))
    return sets


def plan(split_df: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Every original, plus every augmented copy a training set asks for (training_sets); with the split
    columns of split_df (dropped before the plan is written)."""
    cfg = BalanceConfig.from_params(params)
    augmenter = Augmenter.from_params(params)
    df = split_df.copy()
    df["item_id"] = df["corpus"] + "_" + df["utt_id"]
    df["augmented"] = False
    df["copy"] = 0
    df["augmentation"] = ""
    parts = [df]
    if cfg.method == "oversample":
        wanted: dict[str, tuple[str, int]] = {}
        for _, mask in training_sets(df, params):
            _, copies = cfg.select(df.loc[mask, ["item_id", "label"]])
            wanted.update(zip(copies["item_id"], zip(copies["source"], copies["copy"])))
        if wanted:
            by_id = df.set_index("item_id")
            rows = []
            for item_id, (source, copy) in sorted(wanted.items()):
                src = by_id.loc[source].copy()
                src["item_id"] = item_id
                src["augmented"] = True
                src["copy"] = int(copy)
                src["augmentation"] = json.dumps(augmenter.sample(cfg.seed, item_id), sort_keys=True)
                rows.append(src)
            copies_df = pd.DataFrame(rows).reset_index(drop=True)
            copies_df["split"] = "train"  # copies are training data only, whatever split their source is in now
            parts.append(copies_df)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["split", "corpus", "item_id"]).reset_index(drop=True)


def summarise(plan_df: pd.DataFrame, params: dict) -> dict:
    """What the train stage trains on (its training split, balanced) and what the plan renders."""
    from pipeline.balancing import training_mask

    cfg = BalanceConfig.from_params(params)
    originals = plan_df[~plan_df["augmented"]]
    sources = set(originals.loc[originals["split"] == "train", "item_id"])
    # the training split's originals and the copies rendered of them, as the train stage loads them
    candidates = plan_df[(plan_df["corpus"] + "_" + plan_df["utt_id"]).isin(sources)]
    train = candidates[training_mask(candidates, cfg)]
    table = pd.crosstab(train["label"], train["augmented"]).reindex(index=list(TARGET_LABELS), fill_value=0)
    return {"method": cfg.method,
            "train_by_label": {lab: {"original": int(table.loc[lab].get(False, 0)),
                                     "augmented": int(table.loc[lab].get(True, 0))} for lab in table.index},
            "rows_by_split": {k: int(v) for k, v in originals["split"].value_counts().items()},
            "copies_rendered": int(plan_df["augmented"].sum()),
            "training_sets": [name for name, _ in training_sets(originals, params)] if cfg.method == "oversample"
            else ["train split"]}


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
    lines = [f"balance: method {summary['method']}; the train stage's training images per label "
             f"(original + augmented):"]
    lines += [f"  {lab:<9} {v['original']:>6} + {v['augmented']:>6}" for lab, v in summary["train_by_label"].items()]
    lines.append("  originals to render per split (all of them, whatever the balancing): "
                 + ", ".join(f"{k} {v}" for k, v in sorted(summary["rows_by_split"].items()))
                 + f"; augmented copies {summary['copies_rendered']} (for: {', '.join(summary['training_sets'])})")
    print("\n".join(lines))
    return plan_df


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline balance", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
