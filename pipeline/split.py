"""Stage 2, split: manifest -> train / val / test.

`speaker` (default): no speaker in two splits, per corpus, stratified by label as far as the speakers
allow; either by ratios (`val_ratio`, `test_ratio`) or, with `folds` = K >= 2, by speaker folds: each
corpus's speakers are dealt into K folds, fold `fold` is the test set and validation speakers come from
the other folds (K = number of speakers is leave-one-speaker-out). `folds: auto` (the default) deals each
corpus into as many folds as its speakers allow, at most MAX_AUTO_FOLDS, so any corpus of two speakers or
more cross-validates with the defaults. `random`: the papers' protocol (leaks speakers; kept to reproduce
them). `corpus`: leave one corpus out for test. Byte-identical recordings always land in the same split and
fold, in one corpus or across two (a recording shared by corpora follows the first corpus by name). Every
draw is seeded from (seed, corpus), so a corpus's split never changes when another corpus is added (unless
the two share recordings).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.corpora import ADAPTER_NAMES
from pipeline.errors import ParamsError, UserError
from pipeline.io import write_json, write_parquet
from pipeline.params import choice, load, number, section, string_list
from pipeline.paths import MANIFEST, SPLIT_FILE, SPLIT_SUMMARY
from pipeline.seeding import stable_rng

log = logging.getLogger("pipeline.split")

SPLITS = ("train", "val", "test")
STRATEGIES = ("speaker", "random", "corpus")
TRIES = 300  # random speaker assignments tried per corpus; the one closest to the label ratios wins
NO_FOLD = -1  # the `fold` column when split.folds is off
AUTO = "auto"
MAX_AUTO_FOLDS = 5  # split.folds auto: a corpus gets min(this, its speakers) folds


@dataclass
class SplitConfig:
    strategy: str
    val_ratio: float
    test_ratio: float
    seed: int
    val_speakers: list[str]
    test_speakers: list[str]
    test_corpus: str | None
    folds: int = 0  # K speaker folds; 0 = off (the ratio split); with auto_folds, the most a corpus gets
    fold: int = 0  # the test fold, 0..K-1
    auto_folds: bool = False  # split.folds auto: each corpus min(folds, its speakers) folds

    def folds_per_corpus(self, manifest_df: pd.DataFrame) -> dict[str, int]:
        """The folds each corpus is dealt into: K, or with auto as many as its speakers (joined by byte-identical
        recordings) allow, at most MAX_AUTO_FOLDS."""
        return _folds_per_corpus(manifest_df, self.folds, self.auto_folds)

    def resolved(self, manifest_df: pd.DataFrame, notes: list[str] | None = None) -> "SplitConfig":
        """This config with `folds` the number of folds the corpora give (auto: the most any corpus gets; off
        when no corpus has two speakers), and `fold` checked against it."""
        if not self.auto_folds:
            return self
        per_corpus = self.folds_per_corpus(manifest_df)
        k = max(per_corpus.values(), default=0)
        if k < 2:
            if notes is not None:
                notes.append("split.folds auto: no corpus has two speakers, so there are no speaker folds: "
                             "the ratio split is used and cross-validation is off")
            return dataclasses.replace(self, folds=0, fold=0, auto_folds=False)
        if not 0 <= self.fold < k:
            raise ParamsError("split.fold", f"must be in 0..{k - 1}: split.folds auto gives {k} folds here "
                                            f"({_describe(per_corpus)}), got {self.fold}")
        return dataclasses.replace(self, folds=k)

    @classmethod
    def from_params(cls, params: dict) -> "SplitConfig":
        s = section(params, "split", keys=("strategy", "val_ratio", "test_ratio", "seed", "val_speakers",
                                           "test_speakers", "test_corpus", "folds", "fold"))
        auto = s.get("folds", AUTO) == AUTO
        cfg = cls(
            strategy=choice(s, "strategy", "split", STRATEGIES, default="speaker"),
            val_ratio=number(s, "val_ratio", "split", default=0.15, lo=0, hi=1, hi_open=True),
            test_ratio=number(s, "test_ratio", "split", default=0.2, lo=0, hi=1, lo_open=True, hi_open=True),
            seed=number(s, "seed", "split", default=42, integer=True),
            val_speakers=string_list(s, "val_speakers", "split"),
            test_speakers=string_list(s, "test_speakers", "split"),
            test_corpus=s.get("test_corpus"),
            folds=MAX_AUTO_FOLDS if auto else (_explicit_folds(s) or 0),
            fold=number(s, "fold", "split", default=0, integer=True),
            auto_folds=auto,
        )
        if auto and cfg.strategy != "speaker":  # speaker folds only make sense for the speaker strategy
            cfg = dataclasses.replace(cfg, folds=0, auto_folds=False)
        if cfg.folds == 1:
            raise ParamsError("split.folds", "must be 0 or null (off: the ratio split) or K >= 2 speaker folds, got 1")
        if cfg.folds and cfg.strategy != "speaker":
            raise ParamsError("split.folds", f"speaker folds need split.strategy speaker, not {cfg.strategy!r} "
                                             f"(set split.folds: 0 for the {cfg.strategy} strategy)")
        if cfg.folds and not 0 <= cfg.fold < cfg.folds:
            raise ParamsError("split.fold", f"must be in 0..{cfg.folds - 1} (split.folds is "
                                            f"{'auto: at most ' if cfg.auto_folds else ''}{cfg.folds}), got {cfg.fold}")
        if not cfg.folds and cfg.fold != 0:
            raise ParamsError("split.fold", f"split.folds is off (0), so there is no fold {cfg.fold}: "
                                            f"set split.folds to K >= 2 to choose a test fold")
        if cfg.val_ratio + cfg.test_ratio >= 1:
            raise ParamsError("split.val_ratio", f"val_ratio + test_ratio must be < 1, got "
                                                 f"{cfg.val_ratio} + {cfg.test_ratio}")
        if cfg.test_corpus is not None and cfg.test_corpus not in ADAPTER_NAMES:
            raise ParamsError("split.test_corpus", f"{cfg.test_corpus!r} is not one of: null, {', '.join(ADAPTER_NAMES)}")
        if cfg.strategy == "corpus" and cfg.test_corpus not in ADAPTER_NAMES:
            raise ParamsError("split.test_corpus", f"strategy corpus needs the corpus to hold out; "
                                                   f"{cfg.test_corpus!r} is not one of: {', '.join(ADAPTER_NAMES)}")
        both = set(cfg.val_speakers) & set(cfg.test_speakers)
        if both:
            raise ParamsError("split.val_speakers", f"speakers in both val and test: {', '.join(sorted(both))}")
        return cfg


def _explicit_folds(s: dict):
    value = s.get("folds")
    if isinstance(value, str) and value != AUTO:
        try:
            value = int(value)
        except ValueError:
            raise ParamsError("split.folds", f"must be auto, 0 (off: the ratio split) or K >= 2 speaker folds, "
                                             f"got {value!r}") from None
    if isinstance(value, bool) or not (value is None or isinstance(value, int)) or (value or 0) < 0:
        raise ParamsError("split.folds", f"must be auto, 0 (off: the ratio split) or K >= 2 speaker folds, "
                                         f"got {value!r}")
    return value


def _folds_per_corpus(manifest_df: pd.DataFrame, folds: int, auto: bool) -> dict[str, int]:
    if not auto:
        return {c: folds for c in sorted(set(manifest_df["corpus"]))}
    unit = _units(manifest_df, "speaker")
    return {c: min(folds, int(unit[part.index].nunique())) for c, part in manifest_df.groupby("corpus", sort=True)}


def _describe(per_corpus: dict[str, int]) -> str:
    return ", ".join(f"{c} {k}" for c, k in per_corpus.items())


def _unify_across_corpora(df: pd.DataFrame, unit: pd.Series, values: pd.Series, first=None) -> pd.Series:
    """`values` (one per row) made equal within every unit whose rows span several corpora (byte-identical
    recordings in two corpora): each takes the value of its rows in the first corpus by name, or `first(values)`
    when given. Units within one corpus are untouched, so a corpus sharing no recording with another keeps
    exactly its own draw."""
    corpora = df.groupby(unit)["corpus"].nunique()
    shared = set(corpora.index[corpora > 1])
    if not shared:
        return values
    values = values.copy()
    for u, rows in df[unit.isin(shared)].groupby(unit[unit.isin(shared)]).groups.items():
        part = df.loc[rows]
        chosen = first(values[rows]) if first is not None else values[part.index[part["corpus"] == part["corpus"].min()][0]]
        values[rows] = chosen
    return values


def _units(df: pd.DataFrame, key: str) -> pd.Series:
    """Group id per row: rows sharing `key` or a content hash end up in one unit (union-find)."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k, h in zip(df[key], df["content_hash"]):
        a, b = find(("k", k)), find(("h", h))
        if a != b:
            parent[b] = a
    return pd.Series([str(find(("k", k))[1]) for k in df[key]], index=df.index)


def _label_matrix(df: pd.DataFrame, unit: pd.Series) -> tuple[list, np.ndarray]:
    table = pd.crosstab(unit, df["label"]).reindex(columns=list(TARGET_LABELS), fill_value=0)
    return list(table.index), table.to_numpy(dtype=float)


def _assign_stratified(units: list, counts: np.ndarray, n_val: int, n_test: int,
                       ratios: tuple[float, float], rng: np.random.Generator) -> dict:
    """Choose which units go to val and test so each split's label counts are closest to the ratios."""
    total = counts.sum(axis=0)
    targets = {"val": total * ratios[0], "test": total * ratios[1]}
    best, best_cost = None, np.inf
    for _ in range(TRIES):
        order = rng.permutation(len(units))
        test_idx, val_idx = order[:n_test], order[n_test:n_test + n_val]
        cost = (np.abs(counts[test_idx].sum(axis=0) - targets["test"]).sum()
                + np.abs(counts[val_idx].sum(axis=0) - targets["val"]).sum())
        if cost < best_cost:
            best, best_cost = (set(test_idx.tolist()), set(val_idx.tolist())), cost
    test_idx, val_idx = best
    return {u: ("test" if i in test_idx else "val" if i in val_idx else "train") for i, u in enumerate(units)}


def split_by_speaker(df: pd.DataFrame, cfg: SplitConfig, notes: list[str]) -> pd.Series:
    """train / val / test per row by ratios or explicit speaker lists, per corpus; a recording shared by two
    corpora puts its speakers in the split its first corpus by name gave them."""
    return _unify_across_corpora(df, _units(df, "speaker"), _split_by_speaker(df, cfg, notes))


def _split_by_speaker(df: pd.DataFrame, cfg: SplitConfig, notes: list[str]) -> pd.Series:
    unit = _units(df, "speaker")
    out = pd.Series("train", index=df.index)
    explicit = bool(cfg.val_speakers or cfg.test_speakers)
    if explicit:
        known = set(df["speaker"])
        for key, speakers in (("split.test_speakers", cfg.test_speakers), ("split.val_speakers", cfg.val_speakers)):
            missing = [s for s in speakers if s not in known]
            if missing:
                sample = ", ".join(sorted(known)[:6])
                raise ParamsError(key, f"speakers not in the manifest: {', '.join(missing)} (speakers look like: "
                                       f"{sample} ...)")
        out[df["speaker"].isin(cfg.test_speakers)] = "test"
        out[df["speaker"].isin(cfg.val_speakers)] = "val"
        # A unit joined by duplicates follows its explicitly placed member.
        for u, rows in df.groupby(unit).groups.items():
            placed = set(out[rows]) - {"train"}
            if placed:
                out[rows] = sorted(placed)[-1]
        if cfg.val_speakers:
            return out
        rest = df[out == "train"]
        if rest.empty:
            return out
        # val drawn by ratio from the speakers left over, per corpus
        for corpus, part in rest.groupby("corpus"):
            units, counts = _label_matrix(part, unit[part.index])
            n_val = int(round(cfg.val_ratio * len(units))) if len(units) > 2 else 0
            if n_val:
                assign = _assign_stratified(units, counts, n_val, 0, (cfg.val_ratio, 0.0),
                                            stable_rng(cfg.seed, "split-val", corpus))
                out[part.index] = unit[part.index].map(assign).to_numpy()
        return out
    for corpus, part in df.groupby("corpus"):
        units, counts = _label_matrix(part, unit[part.index])
        n = len(units)
        if n == 1:
            notes.append(f"{corpus}: one speaker group only: all of {corpus} goes to train "
                         f"(a speaker-independent split cannot test on it)")
            continue
        if n == 2:
            n_test, n_val = 1, 0
            notes.append(f"{corpus}: only 2 speakers: one goes to train, one to test, none to val "
                         f"(a speaker-independent split of {corpus} alone has one speaker per side)")
        else:
            n_test = min(max(1, int(round(cfg.test_ratio * n))), n - 2 if cfg.val_ratio > 0 else n - 1)
            n_val = min(max(1, int(round(cfg.val_ratio * n))), n - n_test - 1) if cfg.val_ratio > 0 else 0
        assign = _assign_stratified(units, counts, n_val, n_test, (cfg.val_ratio, cfg.test_ratio),
                                    stable_rng(cfg.seed, "split", corpus))
        out[part.index] = unit[part.index].map(assign).to_numpy()
    return out


def _deal_folds(counts: np.ndarray, sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index per unit: fold sizes (speakers) balanced first, then each fold's label counts closest
    to 1/k of the corpus's (greedy over TRIES random orders, the closest wins)."""
    target = counts.sum(axis=0) / k
    tries = 1 if k >= len(counts) else TRIES  # one unit per fold: every deal is alike
    best, best_cost = None, np.inf
    for _ in range(tries):
        order, fold_order = rng.permutation(len(counts)), rng.permutation(k)
        fold_counts, fold_sizes = np.zeros((k, counts.shape[1])), np.zeros(k)
        assign = np.empty(len(counts), dtype=int)
        for i in order:
            sizes_now = fold_sizes[fold_order]
            candidates = fold_order[sizes_now == sizes_now.min()]
            cost_if = np.abs(fold_counts[candidates] + counts[i] - target).sum(axis=1)
            f = candidates[int(np.argmin(cost_if - np.abs(fold_counts[candidates] - target).sum(axis=1)))]
            assign[i] = f
            fold_counts[f] += counts[i]
            fold_sizes[f] += sizes[i]
        cost = np.abs(fold_counts - target).sum()
        if cost < best_cost:
            best, best_cost = assign, cost
    return best


def speaker_folds(manifest_df: pd.DataFrame, folds: int, seed: int, notes: list[str] | None = None,
                  auto: bool = False) -> pd.Series:
    """Speaker -> fold index (0..folds-1), dealt per corpus from (seed, corpus) only, so adding a corpus
    leaves the others' folds as they were. With `auto`, a corpus is dealt into min(folds, its speakers) folds
    (one log line says how many each got). Speakers joined by byte-identical recordings share a fold, within a
    corpus and across corpora (a recording in two corpora: the fold its first corpus by name gave it)."""
    if folds < 2:
        raise ParamsError("split.folds", f"speaker folds need K >= 2, got {folds}")
    unit = _units(manifest_df, "speaker")
    per_corpus = _folds_per_corpus(manifest_df, folds, auto)
    if auto:
        log.info("split.folds auto: folds per corpus as its speakers allow (at most %d): %s", folds,
                 ", ".join(f"{c} {k} ({part['speaker'].nunique()} speakers)"
                           for (c, k), (_, part) in zip(per_corpus.items(), manifest_df.groupby("corpus", sort=True))))
    out = {}
    for corpus, part in manifest_df.groupby("corpus", sort=True):
        k = per_corpus[corpus]
        units, counts = _label_matrix(part, unit[part.index])
        sizes = part.groupby(unit[part.index])["speaker"].nunique().reindex(units).to_numpy()
        fold_of = dict(zip(units, _deal_folds(counts, sizes, k, stable_rng(seed, "folds", corpus)).tolist()))
        for speaker, u in dict(zip(part["speaker"], unit[part.index])).items():
            out[speaker] = fold_of[u]
        n_speakers = part["speaker"].nunique()
        if notes is not None and n_speakers < folds and not auto:
            empty = sorted(set(range(folds)) - {out[s] for s in part["speaker"].unique()})
            notes.append(f"{corpus}: {n_speakers} speakers for {folds} folds: fold(s) {', '.join(map(str, empty))} "
                         f"have no test speaker from {corpus}")
    row_folds = _unify_across_corpora(manifest_df, unit, manifest_df["speaker"].map(out))
    if not row_folds.equals(manifest_df["speaker"].map(out)) and notes is not None:
        notes.append("recordings shared by two corpora (byte-identical) put their speakers in one fold: the fold "
                     "of the first corpus by name")
    out = dict(zip(manifest_df["speaker"], row_folds))
    return pd.Series(out, name="fold", dtype=int).sort_index()


def fold_splits(manifest_df: pd.DataFrame, cfg: SplitConfig, notes: list[str] | None = None) -> list[pd.Series]:
    """The train / val / test Series (manifest rows) of every fold the corpora give (cfg.folds, or with
    split.folds auto as many as the corpora's speakers allow): what crossval trains and tests on."""
    cfg = cfg.resolved(manifest_df, notes)
    if cfg.folds < 2:
        return []
    folds = speaker_folds(manifest_df, cfg.folds, cfg.seed, notes, auto=cfg.auto_folds)
    return [fold_split(manifest_df, cfg, k, notes, folds=folds) for k in range(cfg.folds)]


def fold_split(manifest_df: pd.DataFrame, cfg: SplitConfig, fold: int, notes: list[str] | None = None,
               folds: pd.Series | None = None) -> pd.Series:
    """train / val / test per row for test fold `fold` of cfg.folds speaker folds: the fold's speakers are
    the test set; per corpus, val_ratio of the other folds' speakers (at least one when the corpus has 3 or
    more) validate, drawn from the next fold(s) after `fold` (cyclic), stratified by label among them.

    Why the next fold: drawn from all training speakers, the label-stratified choice of one validation speaker
    is the same "most typical" speaker in nearly every fold (on EmoDB leave-one-speaker-out: speaker 14 in 8
    of 10 folds, for every seed), so every setting chosen on validation was chosen on one person. Rotating
    makes the validation speakers, like the test speakers, cover the corpus once over the K folds."""
    if not 0 <= fold < cfg.folds:
        raise ParamsError("split.fold", f"must be in 0..{cfg.folds - 1} (split.folds is {cfg.folds}), got {fold}")
    if folds is None:
        folds = speaker_folds(manifest_df, cfg.folds, cfg.seed, notes, auto=cfg.auto_folds)
    out = pd.Series("train", index=manifest_df.index)
    out[manifest_df["speaker"].map(folds).to_numpy() == fold] = "test"
    if not (out == "test").any():
        most = int(manifest_df.groupby("corpus")["speaker"].nunique().max())
        raise ParamsError("split.folds", f"fold {fold} of {cfg.folds} has no test speaker: no corpus has more than "
                                         f"{most} speakers; use split.folds <= {most}")
    if cfg.val_ratio == 0:
        return out
    unit = _units(manifest_df, "speaker")
    n_speakers = manifest_df.groupby("corpus")["speaker"].nunique()
    rest = manifest_df[out == "train"]
    row_fold = manifest_df["speaker"].map(folds)
    for corpus, part in rest.groupby("corpus"):
        units, counts = _label_matrix(part, unit[part.index])
        if n_speakers[corpus] < 3 or len(units) < 2:
            continue
        n_val = min(max(1, int(round(cfg.val_ratio * len(units)))), len(units) - 1)
        # each unit's distance after the test fold (1 = the next fold); the nearest folds give n_val or more
        after = ((row_fold[part.index] - fold) % cfg.folds).groupby(unit[part.index]).first().reindex(units)
        cutoff = np.sort(after.to_numpy())[n_val - 1]
        near = np.flatnonzero(after.to_numpy() <= cutoff)
        chosen = _assign_stratified([units[i] for i in near], counts[near], n_val, 0,
                                    (n_val / len(near), 0.0),  # near holds >= n_val >= 1 units
                                    stable_rng(cfg.seed, "fold-val", corpus, fold))
        assign = {u: chosen.get(u, "train") for u in units}
        out[part.index] = unit[part.index].map(assign).to_numpy()
    return _unify_across_corpora(manifest_df, unit, out)


def split_random(df: pd.DataFrame, cfg: SplitConfig) -> pd.Series:
    """The papers' protocol: utterances shuffled, stratified by corpus and label (duplicates kept together)."""
    unit = _units(df, "utt_key")
    first = df.groupby(unit)[["corpus", "label"]].first()  # a duplicate group goes by its first row
    assign = {}
    for (corpus, label), group in first.groupby(["corpus", "label"]):
        units = sorted(group.index)
        order = stable_rng(cfg.seed, "split-random", corpus, label).permutation(len(units))
        n_test = int(round(cfg.test_ratio * len(units)))
        n_val = int(round(cfg.val_ratio * len(units)))
        for rank, i in enumerate(order):
            assign[units[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return pd.Series(unit.map(assign).to_numpy(), index=df.index)


def split_corpus(df: pd.DataFrame, cfg: SplitConfig) -> pd.Series:
    if cfg.test_corpus not in set(df["corpus"]):
        raise ParamsError("split.test_corpus", f"{cfg.test_corpus!r} is not in the manifest; corpora ingested: "
                                               f"{', '.join(sorted(set(df['corpus'])))}")
    out = pd.Series("test", index=df.index)
    rest = df[df["corpus"] != cfg.test_corpus]
    if rest.empty:
        raise UserError("split.strategy corpus needs at least two corpora: all data is in the test corpus")
    inner = SplitConfig("speaker", cfg.val_ratio, 0.0, cfg.seed, [], [], None)
    unit = _units(rest, "speaker")
    for corpus, part in rest.groupby("corpus"):
        units, counts = _label_matrix(part, unit[part.index])
        n_val = min(max(1, int(round(inner.val_ratio * len(units)))), len(units) - 1) if inner.val_ratio else 0
        assign = _assign_stratified(units, counts, n_val, 0, (inner.val_ratio, 0.0),
                                    stable_rng(cfg.seed, "split-val", corpus))
        out[part.index] = unit[part.index].map(assign).to_numpy()
    # a recording the held-out corpus shares with a training corpus takes its speakers there to test
    return _unify_across_corpora(df, _units(df, "speaker"), out,
                                 first=lambda v: "test" if (v == "test").any() else v.iloc[0])


def make_split(manifest: pd.DataFrame, cfg: SplitConfig) -> tuple[pd.DataFrame, list[str]]:
    df = manifest.copy()
    notes: list[str] = []
    cfg = cfg.resolved(df, notes)
    df["fold"] = NO_FOLD
    if cfg.folds:
        folds = speaker_folds(df, cfg.folds, cfg.seed, notes, auto=cfg.auto_folds)
        df["fold"] = df["speaker"].map(folds).astype(int)
    if cfg.strategy == "speaker" and cfg.folds and not (cfg.val_speakers or cfg.test_speakers):
        df["split"] = fold_split(df, cfg, cfg.fold, notes, folds)
    elif cfg.strategy == "speaker":
        if cfg.folds:
            notes.append("split.test_speakers / split.val_speakers are set: they decide the split, not "
                         f"split.fold {cfg.fold} (the fold column still records the {cfg.folds} folds)")
        df["split"] = split_by_speaker(df, cfg, notes)
    elif cfg.strategy == "random":
        df["utt_key"] = df["corpus"] + ":" + df["utt_id"]
        df["split"] = split_random(df, cfg)
        df = df.drop(columns="utt_key")
        notes.append("strategy random: speakers appear in several splits (the papers' protocol; "
                     "results are not speaker-independent)")
    else:
        df["split"] = split_corpus(df, cfg)
    if cfg.strategy != "random":
        leaks = df.groupby("speaker")["split"].nunique()
        assert (leaks <= 1).all(), f"speakers in two splits: {list(leaks[leaks > 1].index)}"
    for split in SPLITS:
        if not (df["split"] == split).any() and not (split == "val" and cfg.val_ratio == 0):
            notes.append(f"the {split} split is empty")
    return df, notes


def report(df: pd.DataFrame, notes: list[str], cfg: SplitConfig) -> dict:
    counts = {}
    for split in SPLITS:
        part = df[df["split"] == split]
        counts[split] = {
            "files": int(len(part)),
            "speakers": sorted(part["speaker"].unique().tolist()),
            "by_label": {k: int(v) for k, v in part["label"].value_counts().sort_index().items()},
            "by_corpus_label": {c: {k: int(v) for k, v in g["label"].value_counts().sort_index().items()}
                                for c, g in part.groupby("corpus")},
        }
    out = {"strategy": cfg.strategy, "seed": cfg.seed, "splits": counts, "notes": notes}
    if cfg.folds:
        out["folds"] = {"k": cfg.folds, "auto": cfg.auto_folds, "test_fold": cfg.fold, "speakers": fold_table(df)}
    return out


def fold_table(df: pd.DataFrame) -> dict:
    """{corpus: {fold: [speakers]}} from a split frame's `fold` column."""
    table: dict = {}
    for (corpus, fold), part in df[df["fold"] != NO_FOLD].groupby(["corpus", "fold"]):
        table.setdefault(corpus, {})[str(fold)] = sorted(part["speaker"].unique().tolist())
    return table


def format_table(df: pd.DataFrame) -> str:
    table = pd.crosstab([df["split"], df["corpus"]], df["label"], margins=True, margins_name="total")
    table = table.reindex(columns=[c for c in list(TARGET_LABELS) + ["total"] if c in table.columns])
    spk = df.groupby(["split", "corpus"])["speaker"].nunique().rename("speakers")
    table = table.join(spk, how="left")
    table.loc[("total", ""), "speakers"] = df["speaker"].nunique()
    table["speakers"] = table["speakers"].fillna(0).astype(int)
    return table.to_string()


def run(params: dict) -> pd.DataFrame:
    cfg = SplitConfig.from_params(params)
    if not MANIFEST.exists():
        raise UserError(f"{MANIFEST} not found: run the ingest stage first (dvc repro ingest)")
    manifest = pd.read_parquet(MANIFEST)
    df, notes = make_split(manifest, cfg)
    cfg = cfg.resolved(manifest)  # split.folds auto: the folds the corpora gave
    for note in notes:
        log.warning(note)
    write_parquet(SPLIT_FILE, df)
    write_json(SPLIT_SUMMARY, report(df, notes, cfg))
    print(format_table(df))
    if cfg.folds:
        print(f"speaker folds (split.folds {'auto, ' if cfg.auto_folds else ''}{cfg.folds}, test fold {cfg.fold}):")
        for corpus, table in fold_table(df).items():
            print(f"  {corpus}: " + "; ".join(f"{f}: {' '.join(s)}" for f, s in table.items()))
    return df


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline split", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
