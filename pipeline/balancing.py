"""Class balancing of a training set: which originals to train on and which augmented copies to add. One
implementation for the balance stage (which renders every copy any training set will ask for), the train stage
and crossval (which select, from the rendered rows, the rows to train on), so a fold of the cross-validation
is balanced exactly like the train stage's training split, and no test fold is ever changed by balancing.

    none         every original
    undersample  every class down to the rarest (or `target`): a seeded random subset of a larger class's files
                 (never the first ones by id, which would drop whole corpora in alphabetical order)
    oversample   every class up to the largest (or `target`): its originals (a seeded subset when above the
                 target) plus copies dealt to its files in a seeded order; copy k of file X is `X_augNN`
                 (NN = k // files + 1), whose augmentation is drawn from balance.seed and that id alone, so a
                 copy is the same rendered row whichever training set asks for it

The draws depend on the training set (its class counts and files), the seed and the labels only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.params import choice, number, section
from pipeline.seeding import stable_rng

log = logging.getLogger("pipeline.balancing")

METHODS = ("none", "undersample", "oversample")


@dataclass(frozen=True)
class BalanceConfig:
    method: str = "none"
    target: int | None = None
    seed: int = 42

    @classmethod
    def from_params(cls, params: dict) -> "BalanceConfig":
        b = section(params, "balance", keys=("method", "target", "seed"))
        return cls(method=choice(b, "method", "balance", METHODS, default="none"),
                   target=number(b, "target", "balance", default=None, lo=1, integer=True, allow_none=True),
                   seed=number(b, "seed", "balance", default=42, integer=True))

    def select(self, train: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
        """For training originals `train` (columns item_id, label): (the item ids of the originals to train on,
        the copies to add: a frame of item_id, source (the original's item id) and copy number)."""
        none = pd.DataFrame({"item_id": pd.Series(dtype=str), "source": pd.Series(dtype=str),
                             "copy": pd.Series(dtype=int)})
        if self.method == "none" or train.empty:
            return sorted(train["item_id"]), none
        counts = train["label"].value_counts()
        kept, copies = [], []
        if self.method == "undersample":
            n = self.target or int(counts.min())  # classes smaller than a given target keep all their files
            for label, group in train.groupby("label"):
                kept += list(_subset(group, n, stable_rng(self.seed, "undersample", label))["item_id"])
            return sorted(kept), none
        n = self.target or int(counts.max())
        for label, group in train.groupby("label"):
            rng = stable_rng(self.seed, "oversample", label)
            group = _subset(group, n, rng)  # the originals (a random subset when above the target)
            kept += list(group["item_id"])
            order = rng.permutation(len(group))  # which files get the first copies: none by name
            for k in range(max(0, n - len(group))):
                source = group["item_id"].iloc[order[k % len(group)]]
                copy = k // len(group) + 1
                copies.append({"item_id": f"{source}_aug{copy:02d}", "source": source, "copy": copy})
        return sorted(kept), (pd.DataFrame(copies) if copies else none)

    def describe(self) -> str:
        return {"none": "no balancing", "undersample": "undersampled", "oversample": "oversampled"}[self.method] + \
            (f" to {self.target} files per class" if self.target and self.method != "none" else "")


def _subset(group: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """All of a class's files when it has at most n, else a random n of them drawn from rng; in id order."""
    group = group.sort_values("item_id")
    if len(group) <= n:
        return group
    return group.iloc[np.sort(rng.choice(len(group), size=n, replace=False))]


def training_mask(meta: pd.DataFrame, cfg: BalanceConfig) -> np.ndarray:
    """The rows of `meta` (a training split's rendered rows: its originals and the copies rendered of them) to
    train on under `cfg`: the kept originals and the copies the balancing asks for. A copy the shards lack (its
    render was quarantined) is left out, with a warning."""
    augmented = meta["augmented"].to_numpy(dtype=bool)
    kept, copies = cfg.select(meta.loc[~augmented, ["item_id", "label"]])
    wanted = set(kept) | set(copies["item_id"])
    mask = meta["item_id"].isin(wanted).to_numpy()
    missing = len(copies) - int((mask & augmented).sum())
    if missing > 0:
        log.warning("%d augmented copies the balancing asks for are not in the shards (quarantined by render?): "
                    "training without them", missing)
    return mask


def select_training(data, cfg: BalanceConfig):
    """SplitData of a training split (originals + rendered copies) -> the rows to train on."""
    return data.subset(training_mask(data.meta, cfg))


class BalancedRows:
    """Crossval's rows (the originals of every fold) and, for a fold's training rows, the rows to train on
    under the train stage's balancing: a subset of them (undersample), or them plus the copies rendered for
    them (oversample, from `load_copies()`, called once). Test and validation rows are never balanced."""

    def __init__(self, data, cfg: BalanceConfig, load_copies):
        self.data, self.cfg = data, cfg
        self._load_copies = load_copies  # () -> SplitData of every rendered copy
        self._copies = None
        if cfg.method != "none":
            log.info("crossval trains each fold on its training speakers %s, as the train stage does (balance); "
                     "test folds are never balanced", cfg.describe())

    def __getattr__(self, name):  # everything else is the data's (x, labels, meta, subset ...)
        return getattr(self.data, name)

    def __len__(self) -> int:
        return len(self.data)

    def training(self, mask: np.ndarray):
        """SplitData to train on, for the training rows `mask` (of self.data's rows)."""
        mask = np.asarray(mask, dtype=bool)
        if self.cfg.method == "none":
            return self.data.subset(mask)
        kept, copies = self.cfg.select(self.data.meta.loc[mask, ["item_id", "label"]])
        originals = self.data.subset(mask & self.data.meta["item_id"].isin(kept).to_numpy())
        if copies.empty:
            return originals
        if self._copies is None:
            self._copies = self._load_copies()
        have = self._copies.meta["item_id"].isin(set(copies["item_id"])).to_numpy()
        if have.sum() < len(copies):
            log.warning("%d augmented copies the balancing asks for are not in the shards: re-run the balance "
                        "and render stages (dvc repro render); training without them", len(copies) - have.sum())
        extra = self._copies.subset(have)
        return type(originals)(inputs={k: np.concatenate([v, extra.inputs[k]]) for k, v in originals.inputs.items()},
                               labels=np.concatenate([originals.labels, extra.labels]),
                               meta=pd.concat([originals.meta, extra.meta], ignore_index=True))


def balanced(data, params: dict, copies) -> BalancedRows:
    """Crossval's data (SplitData of the originals) with .training(mask): the rows to train on under params'
    balancing; `copies()` loads the rendered augmented copies (only called when oversampling)."""
    return BalancedRows(data, BalanceConfig.from_params(params), copies)
