"""Split (speaker independence, strategies, duplicates) and balance (train-only, deterministic)."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline import TARGET_LABELS
from pipeline.augment import Augmenter, apply_recorded
from pipeline.balance import plan
from pipeline.balancing import BalanceConfig, training_mask
from pipeline.errors import ParamsError
from pipeline.split import SplitConfig, fold_split, make_split, report, speaker_folds


def manifest(speakers_per_corpus={"ravdess": 10, "cremad": 12, "tess": 2}, per_label=3):
    rows = []
    for corpus, n_spk in speakers_per_corpus.items():
        for s in range(n_spk):
            for label in TARGET_LABELS:
                for k in range(per_label):
                    utt = f"{s:02d}_{label}_{k}"
                    rows.append({"utt_id": utt, "corpus": corpus, "display": corpus.upper(),
                                 "speaker": f"{corpus}:{s:02d}", "label": label, "path": f"/x/{corpus}/{utt}.wav",
                                 "content_hash": f"{corpus}{utt}", "gender": None, "text_id": str(k)})
    return pd.DataFrame(rows)


def params(**split):
    base = {"strategy": "speaker", "val_ratio": 0.15, "test_ratio": 0.2, "seed": 1, "folds": 0}  # 0: the ratio split
    base.update(split)
    return {"split": base}


def test_speaker_split_has_no_overlap_and_respects_ratios():
    df, notes = make_split(manifest(), SplitConfig.from_params(params()))
    assert (df.groupby("speaker")["split"].nunique() == 1).all()
    for corpus in ("ravdess", "cremad"):
        part = df[df.corpus == corpus]
        frac = (part.split == "test").mean()
        assert 0.1 <= frac <= 0.3, (corpus, frac)
        assert set(part.split) == {"train", "val", "test"}
    # every label is present in every split of the larger corpora (stratified)
    for split in ("train", "val", "test"):
        assert set(df[(df.split == split) & (df.corpus == "cremad")].label) == set(TARGET_LABELS)


def test_two_speaker_corpus_is_explained_not_failed():
    df, notes = make_split(manifest(), SplitConfig.from_params(params()))
    tess = df[df.corpus == "tess"]
    assert sorted(tess.groupby("speaker")["split"].first()) == ["test", "train"]
    assert any("tess" in n and "2 speakers" in n for n in notes)


def test_split_is_deterministic_for_a_seed():
    a, _ = make_split(manifest(), SplitConfig.from_params(params(seed=3)))
    b, _ = make_split(manifest(), SplitConfig.from_params(params(seed=3)))
    assert a["split"].tolist() == b["split"].tolist()


def test_byte_identical_recordings_land_in_one_split():
    m = manifest()
    # the same recording under two speakers' names: both speakers must follow it
    m.loc[(m.speaker == "ravdess:00") & (m.utt_id.str.endswith("_0")), "content_hash"] = "dup"
    m.loc[(m.speaker == "ravdess:05") & (m.label == "angry") & (m.utt_id.str.endswith("_0")), "content_hash"] = "dup"
    df, _ = make_split(m, SplitConfig.from_params(params()))
    assert df[df.content_hash == "dup"]["split"].nunique() == 1
    rnd, _ = make_split(m, SplitConfig.from_params(params(strategy="random")))
    assert rnd[rnd.content_hash == "dup"]["split"].nunique() == 1


def test_random_strategy_leaks_speakers_and_says_so():
    df, notes = make_split(manifest(), SplitConfig.from_params(params(strategy="random")))
    assert (df.groupby("speaker")["split"].nunique() > 1).any()
    assert any("random" in n for n in notes)
    assert abs((df.split == "test").mean() - 0.2) < 0.05


def test_corpus_strategy_holds_one_corpus_out():
    df, _ = make_split(manifest(), SplitConfig.from_params(params(strategy="corpus", test_corpus="cremad")))
    assert set(df[df.split == "test"].corpus) == {"cremad"}
    assert "cremad" not in set(df[df.split != "test"].corpus)
    assert (df.split == "val").any()


def test_explicit_speaker_lists_override_ratios():
    cfg = SplitConfig.from_params(params(test_speakers=["ravdess:08", "ravdess:09", "tess:01"],
                                         val_speakers=["ravdess:07"]))
    df, _ = make_split(manifest(), cfg)
    assert set(df[df.split == "test"].speaker) == {"ravdess:08", "ravdess:09", "tess:01"}
    assert set(df[df.split == "val"].speaker) == {"ravdess:07"}
    with pytest.raises(ParamsError, match="split.test_speakers"):
        make_split(manifest(), SplitConfig.from_params(params(test_speakers=["ravdess:99"])))


@pytest.mark.parametrize("split_params", [{}, {"folds": 5, "fold": 3}, {"folds": 10, "fold": 0},
                                          {"strategy": "random"}, {"test_speakers": ["ravdess:03"]}])
def test_adding_a_corpus_leaves_the_other_corpus_split_unchanged(split_params):
    # one shared generator used to re-draw RAVDESS's test speakers when CREMA-D was added
    alone, _ = make_split(manifest({"ravdess": 10}), SplitConfig.from_params(params(**split_params)))
    mixed, _ = make_split(manifest({"cremad": 12, "ravdess": 10, "tess": 2}),
                          SplitConfig.from_params(params(**split_params)))
    mixed = mixed[mixed.corpus == "ravdess"].set_index("utt_id")
    alone = alone.set_index("utt_id").loc[mixed.index]
    assert (alone["split"] == mixed["split"]).all()
    assert (alone["fold"] == mixed["fold"]).all()


def test_speaker_folds_are_balanced_and_cover_every_speaker_once():
    m = manifest({"ravdess": 10, "tess": 2})
    cfg = SplitConfig.from_params(params(folds=5))
    folds = speaker_folds(m, 5, cfg.seed)
    assert set(folds.index) == set(m.speaker)
    assert folds[folds.index.str.startswith("ravdess")].value_counts().tolist() == [2] * 5
    assert folds.equals(speaker_folds(m, 5, cfg.seed))  # deterministic
    tested, validated = [], []
    for fold in range(5):
        split = fold_split(m, cfg, fold)
        assert (m.assign(split=split).groupby("speaker")["split"].nunique() == 1).all()
        test_speakers = set(m.speaker[split == "test"])
        assert test_speakers == set(folds.index[folds == fold])
        val = set(m.speaker[(split == "val") & (m.corpus == "ravdess")])
        assert len(val) == 1 and not val & test_speakers  # round(0.15 * 8) = 1, from the training folds
        # drawn from the next fold: settings chosen on validation are chosen on a different person per fold
        assert val <= set(folds.index[folds == (fold + 1) % 5])
        tested += sorted(test_speakers)
        validated += sorted(val)
    assert sorted(tested) == sorted(set(m.speaker))  # every speaker is tested exactly once
    assert len(set(validated)) == 5  # ... and no speaker validates twice
    loso = speaker_folds(m[m.corpus == "ravdess"], 10, cfg.seed)
    assert sorted(loso.tolist()) == list(range(10))  # K = speakers: leave-one-speaker-out


def test_speaker_folds_are_stratified_by_label():
    # speakers 0-3 speak only `angry`, 4-7 only `sad`: every fold of 4 must get one of each
    m = manifest({"ravdess": 8})
    m = m[m.label == np.where(m.speaker.str[-2:].astype(int) < 4, "angry", "sad")]
    folds = speaker_folds(m, 4, seed=3)
    for fold in range(4):
        labels = m[m.speaker.isin(folds.index[folds == fold])].label
        assert sorted(labels.unique()) == ["angry", "sad"], (fold, folds.to_dict())


def test_folds_keep_duplicates_together_note_small_corpora_and_fill_the_report():
    m = manifest({"ravdess": 10, "tess": 2})
    m.loc[(m.speaker == "ravdess:00") & (m.utt_id.str.endswith("_0")), "content_hash"] = "dup"
    m.loc[(m.speaker == "ravdess:05") & (m.utt_id.str.endswith("_0")), "content_hash"] = "dup"
    cfg = SplitConfig.from_params(params(folds=5, fold=2))
    df, notes = make_split(m, cfg)
    assert df[df.speaker.isin(["ravdess:00", "ravdess:05"])]["fold"].nunique() == 1
    assert any(n.startswith("tess: 2 speakers for 5 folds") for n in notes)
    table = report(df, notes, cfg)["folds"]
    assert table["k"] == 5 and table["test_fold"] == 2
    dealt = sorted(s for f in table["speakers"]["ravdess"].values() for s in f)
    assert dealt == sorted(set(m[m.corpus == "ravdess"].speaker))
    assert set(df[df.split == "test"].speaker) == set(table["speakers"]["ravdess"].get("2", []) +
                                                        table["speakers"]["tess"].get("2", []))
    # explicit lists still win over the fold
    df, notes = make_split(m, SplitConfig.from_params(params(folds=5, fold=2, test_speakers=["ravdess:03"])))
    assert set(df[df.split == "test"].speaker) == {"ravdess:03"}
    assert (df.fold >= 0).all() and any("split.fold 2" in n for n in notes)
    # without folds the column says so
    assert (make_split(m, SplitConfig.from_params(params()))[0]["fold"] == -1).all()


def test_a_fold_without_test_speakers_fails_naming_the_key():
    with pytest.raises(ParamsError, match=r"split\.folds.*no test speaker"):
        m = manifest({"ravdess": 3})
        empty = (set(range(4)) - set(speaker_folds(m, 4, seed=1))).pop()
        make_split(m, SplitConfig.from_params(params(folds=4, fold=empty)))


@pytest.mark.parametrize("bad, key", [({"folds": 1}, "split.folds"),
                                      ({"folds": -2}, "split.folds"),
                                      ({"folds": 5, "fold": 5}, "split.fold"),
                                      ({"folds": 5, "fold": -1}, "split.fold"),
                                      ({"folds": 0, "fold": 2}, "split.fold"),
                                      ({"folds": 5, "strategy": "random"}, "split.folds"),
                                      ({"strategy": "speakers"}, "split.strategy"),
                                      ({"test_ratio": 1.5}, "split.test_ratio"),
                                      ({"val_ratio": 0.5, "test_ratio": 0.5}, "split.val_ratio"),
                                      ({"strategy": "corpus", "test_corpus": "nope"}, "split.test_corpus")])
def test_bad_split_params_name_the_key(bad, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        SplitConfig.from_params(params(**bad))


def split_df():
    m = manifest({"ravdess": 10}, per_label=3)
    m = m[~((m.label == "disgust") & (m.utt_id.str.endswith(("_1", "_2"))))]  # disgust is rare
    df, _ = make_split(m, SplitConfig.from_params(params()))
    return df


BALANCE = {"augment": {"time_stretch": {"p": 1.0, "min_rate": 0.8, "max_rate": 1.2},
                       "pitch_shift": {"p": 1.0, "min_semitones": -2, "max_semitones": 2},
                       "gaussian_noise": {"p": 1.0, "min_snr_db": 15, "max_snr_db": 30}}}


def _trained_on(plan_df: pd.DataFrame, params: dict, split: str = "train") -> pd.DataFrame:
    """What the train stage trains on: the split's originals and the copies rendered of them, balanced."""
    sources = set(plan_df.loc[~plan_df.augmented & (plan_df.split == split), "item_id"])
    candidates = plan_df[(plan_df.corpus + "_" + plan_df.utt_id).isin(sources)]
    return candidates[training_mask(candidates, BalanceConfig.from_params(params))]


def test_undersample_renders_every_original_and_trains_on_a_balanced_subset():
    df = split_df()
    p = dict(BALANCE, balance={"method": "undersample", "seed": 1})
    out = plan(df, p)
    assert len(out) == len(df) and not out.augmented.any()  # every original, val and test untouched
    assert out.drop(columns=["item_id", "augmented", "copy", "augmentation"]).equals(
        df.sort_values(["split", "corpus", "utt_id"]).reset_index(drop=True)[out.columns.drop(
            ["item_id", "augmented", "copy", "augmentation"])])
    trained = _trained_on(out, p)
    counts = trained.label.value_counts()
    assert counts.nunique() == 1 and counts.iloc[0] == df[df.split == "train"].label.value_counts().min()
    assert plan(df, dict(p, balance={"method": "none"})).equals(out)  # none and undersample: one render plan


def test_oversample_augments_train_copies_only_and_is_deterministic():
    df = split_df()
    p = dict(BALANCE, balance={"method": "oversample", "seed": 5})
    a, b = plan(df, p), plan(df, p)
    pd.testing.assert_frame_equal(a, b)
    trained = _trained_on(a, p)
    assert trained.label.value_counts().nunique() == 1 and trained.augmented.any()
    assert not a[a.split != "train"].augmented.any() and len(a[~a.augmented]) == len(df)
    aug = a[a.augmented].iloc[0]
    recorded = json.loads(aug["augmentation"])
    assert 0.8 <= recorded["time_stretch"]["rate"] <= 1.2
    assert -2 <= recorded["pitch_shift"]["semitones"] <= 2
    assert 15 <= recorded["gaussian_noise"]["snr_db"] <= 30
    assert a.item_id.is_unique


def test_the_plan_renders_the_copies_every_folds_training_speakers_need():
    """crossval balances each fold's training speakers (and, for its refit, training + validation speakers)
    exactly as the train stage does: every copy any of them asks for is in the render plan."""
    from pipeline.split import fold_splits

    df = split_df()
    p = dict(BALANCE, balance={"method": "oversample", "seed": 5}, split={"folds": 5, "seed": 1, "val_ratio": 0.15})
    out = plan(df, p)
    rendered = set(out.loc[out.augmented, "item_id"])
    cfg, originals = BalanceConfig.from_params(p), out[~out.augmented]
    splits = fold_splits(df.drop(columns=["split", "fold"]), SplitConfig.from_params(p))
    assert len(splits) == 5
    for split in splits:
        for training in (split == "train", split.isin(["train", "val"])):
            part = df.loc[training].assign(item_id=lambda d: d.corpus + "_" + d.utt_id)
            _, copies = cfg.select(part[["item_id", "label"]])
            assert len(copies) and set(copies.item_id) <= rendered
    # a copy asked for by several training sets is one row, the same augmentation whoever asks
    assert out.item_id.is_unique and len(rendered) < 11 * 5 * len(set(df.label))
    again = plan(df, dict(p, split=dict(p["split"], fold=3)))  # another test fold: the same plan
    assert again.drop(columns=["split", "fold"]).equals(out.drop(columns=["split", "fold"]))
    assert len(originals) == len(df)


def test_crossval_trains_each_fold_balanced_and_tests_every_file():
    from pipeline.balancing import BalancedRows
    from pipeline.dataset import SplitData

    df = split_df()
    p = dict(BALANCE, balance={"method": "oversample", "seed": 5}, split={"folds": 5, "seed": 1})
    out = plan(df, p)

    def data(rows):
        return SplitData(inputs={"x": np.arange(len(rows), dtype=np.float32)[:, None]}, labels=rows.label.to_numpy(),
                         meta=rows.reset_index(drop=True))

    originals, copies = out[~out.augmented], out[out.augmented]
    for method in ("undersample", "oversample"):
        q = dict(p, balance=dict(p["balance"], method=method))
        rows = BalancedRows(data(originals), BalanceConfig.from_params(q), lambda: data(copies))
        for fold in range(5):
            train = (originals.fold != fold).to_numpy()
            got = rows.training(train)
            assert set(got.meta.loc[~got.meta.augmented, "item_id"]) <= set(originals.item_id[train])
            assert set(got.meta.loc[got.meta.augmented, "utt_id"]) <= set(originals.utt_id[train])  # no test source
            assert got.meta.label.value_counts().nunique() == 1, (method, fold)
            assert (got.meta.augmented.any()) == (method == "oversample")
        assert len(rows) == len(originals)  # every original stays in the data: each test fold scores all of it


def test_recorded_augmentation_gives_byte_identical_audio():
    sr = 16000
    t = np.arange(sr) / sr
    y = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    recorded = json.dumps(Augmenter.from_params(BALANCE).sample(7, "ravdess_x_aug01"))
    one, two = apply_recorded(y, sr, recorded), apply_recorded(y, sr, recorded)
    assert one.tobytes() == two.tobytes()
    assert not np.allclose(one[: len(y)], y[: len(one)])
    other = apply_recorded(y, sr, json.dumps(Augmenter.from_params(BALANCE).sample(7, "ravdess_y_aug01")))
    assert other.tobytes() != one.tobytes()


@pytest.mark.parametrize("method", ["oversample", "undersample"])
def test_a_target_below_a_class_size_draws_a_seeded_subset_not_the_first_by_id(method):
    # two corpora; by id, every "acorpus" file sorts before every "zcorpus" one
    m = pd.concat([manifest({"acorpus": 4}, per_label=3), manifest({"zcorpus": 4}, per_label=3)])
    df = m.assign(split="train", fold=-1).reset_index(drop=True)
    p = dict(BALANCE, balance={"method": method, "target": 8, "seed": 3}, split={"folds": 0})
    out = plan(df, p)
    assert out.equals(plan(df, p))  # deterministic
    trained = _trained_on(out, p)
    for label, group in trained[~trained.augmented].groupby("label"):
        assert len(group) == 8 and set(group.corpus) == {"acorpus", "zcorpus"}, (label, group.item_id.tolist())
    other = dict(p, balance=dict(p["balance"], seed=4))
    assert not trained.equals(_trained_on(plan(df, other), other))


def test_oversampled_copies_are_spread_over_the_class_not_given_to_the_first_files():
    m = pd.concat([manifest({"acorpus": 4}, per_label=3), manifest({"zcorpus": 4}, per_label=3)])
    df = m.assign(split="train", fold=-1).reset_index(drop=True)
    out = plan(df, dict(BALANCE, balance={"method": "oversample", "target": 30, "seed": 3}, split={"folds": 0}))
    copies = out[out.augmented]
    assert (copies.groupby("label").size() == 30 - 24).all()
    assert set(copies.corpus) == {"acorpus", "zcorpus"}  # 6 copies out of 24 files: not all from acorpus


def test_bad_balance_params_name_the_key():
    with pytest.raises(ParamsError, match=r"balance\.method"):
        plan(split_df(), dict(BALANCE, balance={"method": "smote"}))
    with pytest.raises(ParamsError, match=r"augment\.time_stretch\.min_rate"):
        plan(split_df(), {"balance": {"method": "none"},
                          "augment": {"time_stretch": {"min_rate": 1.5, "max_rate": 1.2}}})
    with pytest.raises(ParamsError, match=r"augment\.gaussian_noise\.min_snr_db"):
        plan(split_df(), {"balance": {"method": "none"},
                          "augment": {"gaussian_noise": {"min_snr_db": 30, "max_snr_db": 10}}})
    with pytest.raises(ParamsError, match=r"augment\.gaussian_noise\.amplitude: replaced by min_snr_db"):
        plan(split_df(), {"balance": {"method": "none"}, "augment": {"gaussian_noise": {"amplitude": 0.005}}})


def test_auto_folds_give_each_corpus_as_many_folds_as_its_speakers_allow(caplog):
    import logging

    m = manifest({"ravdess": 10, "tess": 2})
    cfg = SplitConfig.from_params(params(folds="auto"))
    assert cfg.auto_folds and SplitConfig.from_params({"split": {}}).auto_folds  # the default
    with caplog.at_level(logging.INFO, logger="pipeline.split"):
        folds = speaker_folds(m, cfg.folds, cfg.seed, auto=True)
    said = [r.getMessage() for r in caplog.records if "auto" in r.getMessage()]
    assert len(said) == 1 and "ravdess 5 (10 speakers)" in said[0] and "tess 2 (2 speakers)" in said[0]
    assert sorted(folds[folds.index.str.startswith("tess")]) == [0, 1]
    assert folds[folds.index.str.startswith("ravdess")].value_counts().tolist() == [2] * 5
    # ravdess alone, auto: the same folds as split.folds 5 (its speakers allow 5)
    assert speaker_folds(m[m.corpus == "ravdess"], 5, cfg.seed, auto=True).equals(
        speaker_folds(m[m.corpus == "ravdess"], 5, cfg.seed))
    df, notes = make_split(manifest({"tess": 2}), cfg)
    assert sorted(df["fold"].unique()) == [0, 1] and set(df["split"]) == {"train", "test"}  # no val speaker
    assert report(df, notes, cfg.resolved(df))["folds"]["k"] == 2


def test_auto_folds_check_the_test_fold_against_what_the_corpora_give():
    cfg = SplitConfig.from_params(params(folds="auto", fold=3))
    with pytest.raises(ParamsError, match=r"split.fold.*auto gives 2 folds here \(tess 2\)"):
        make_split(manifest({"tess": 2}), cfg)
    with pytest.raises(ParamsError, match="split.fold"):
        SplitConfig.from_params(params(folds="auto", fold=5))  # never more than 5
    # one speaker per corpus: no speaker folds at all, the ratio split, and a note
    one = manifest({"tess": 1})
    df, notes = make_split(one, SplitConfig.from_params(params(folds="auto")))
    assert (df["fold"] == -1).all() and any("no corpus has two speakers" in n for n in notes)


def test_an_explicit_number_of_folds_keeps_the_strict_check():
    empty = min(set(range(5)) - set(speaker_folds(manifest({"tess": 2}), 5, seed=1)))
    with pytest.raises(ParamsError, match=f"fold {empty} of 5 has no test speaker.*split.folds <= 2"):
        make_split(manifest({"tess": 2}), SplitConfig.from_params(params(folds=5, fold=empty)))
    with pytest.raises(ParamsError, match="split.folds"):
        SplitConfig.from_params(params(folds="some"))


@pytest.mark.parametrize("split_params", [{"folds": "auto", "fold": 1}, {"folds": 5, "fold": 2}, {},
                                          {"strategy": "random"}, {"test_speakers": ["ravdess:03"]}])
def test_a_recording_in_two_corpora_lands_in_one_fold_and_split(split_params):
    m = manifest({"cremad": 12, "ravdess": 10})
    # ravdess:04 and cremad:07 both hold one byte-identical recording (say, one corpus redistributes the other)
    shared = (m.speaker.isin(["ravdess:04", "cremad:07"])) & (m.utt_id.str.endswith("angry_0"))
    m.loc[shared, "content_hash"] = "same-bytes"
    df, _ = make_split(m, SplitConfig.from_params(params(**split_params)))
    assert df[df.content_hash == "same-bytes"]["split"].nunique() == 1
    assert df[df.speaker.isin(["ravdess:04", "cremad:07"])]["fold"].nunique() == 1
    if split_params.get("strategy") == "random" or "test_speakers" in split_params:
        return  # random leaks speakers by design (the recording is kept together); lists name other corpora
    assert (df.groupby("speaker")["split"].nunique() == 1).all()
    # a corpus that shares no recording keeps its own draw whatever the others hold
    other = manifest({"tess": 8}).assign(content_hash=lambda d: "t" + d.content_hash)
    alone, _ = make_split(other, SplitConfig.from_params(params(**split_params)))
    mixed, _ = make_split(pd.concat([m, other], ignore_index=True), SplitConfig.from_params(params(**split_params)))
    tess = mixed[mixed.corpus == "tess"].set_index("utt_id")
    assert (alone.set_index("utt_id").loc[tess.index, ["split", "fold"]] == tess[["split", "fold"]]).all().all()


def test_leave_one_corpus_out_takes_a_recording_it_shares_to_test():
    m = manifest({"cremad": 12, "ravdess": 10})
    shared = (m.speaker.isin(["ravdess:04", "cremad:07"])) & (m.utt_id.str.endswith("angry_0"))
    m.loc[shared, "content_hash"] = "same-bytes"
    df, _ = make_split(m, SplitConfig.from_params(params(strategy="corpus", test_corpus="ravdess")))
    assert set(df[df.speaker.isin(["ravdess:04", "cremad:07"])]["split"]) == {"test"}
