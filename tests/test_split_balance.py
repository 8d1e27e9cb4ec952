"""Split (speaker independence, strategies, duplicates) and balance (train-only, deterministic)."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline import TARGET_LABELS
from pipeline.augment import Augmenter, apply_recorded
from pipeline.balance import plan
from pipeline.errors import ParamsError
from pipeline.split import SplitConfig, make_split


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
    base = {"strategy": "speaker", "val_ratio": 0.15, "test_ratio": 0.2, "seed": 1}
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


@pytest.mark.parametrize("bad, key", [({"strategy": "speakers"}, "split.strategy"),
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
                       "gaussian_noise": {"p": 1.0, "amplitude": 0.005}}}


def test_undersample_only_touches_train():
    df = split_df()
    out = plan(df, dict(BALANCE, balance={"method": "undersample", "seed": 1}))
    train = out[out.split == "train"]
    counts = train.label.value_counts()
    assert counts.nunique() == 1 and counts.iloc[0] == df[df.split == "train"].label.value_counts().min()
    pd.testing.assert_frame_equal(out[out.split != "train"][df.columns].sort_values("utt_id").reset_index(drop=True),
                                  df[df.split != "train"].sort_values("utt_id").reset_index(drop=True),
                                  check_like=True)


def test_oversample_augments_train_copies_only_and_is_deterministic():
    df = split_df()
    p = dict(BALANCE, balance={"method": "oversample", "seed": 5})
    a, b = plan(df, p), plan(df, p)
    pd.testing.assert_frame_equal(a, b)
    train = a[a.split == "train"]
    assert train.label.value_counts().nunique() == 1
    assert train.augmented.any() and not a[a.split != "train"].augmented.any()
    aug = train[train.augmented].iloc[0]
    recorded = json.loads(aug["augmentation"])
    assert 0.8 <= recorded["time_stretch"]["rate"] <= 1.2
    assert -2 <= recorded["pitch_shift"]["semitones"] <= 2
    assert recorded["gaussian_noise"]["amplitude"] == 0.005
    assert a.item_id.is_unique


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


def test_bad_balance_params_name_the_key():
    with pytest.raises(ParamsError, match=r"balance\.method"):
        plan(split_df(), dict(BALANCE, balance={"method": "smote"}))
    with pytest.raises(ParamsError, match=r"augment\.time_stretch\.min_rate"):
        plan(split_df(), {"balance": {"method": "none"},
                          "augment": {"time_stretch": {"min_rate": 1.5, "max_rate": 1.2}}})
