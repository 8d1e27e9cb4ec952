"""The headline's invariants, on a small synthetic workspace with known answers: pooled and mean UAR equal
scikit-learn's, no test speaker reaches a fold's training or validation rows, normalisation statistics are fitted
on the training rows alone, the refit trains on training + validation speakers only, and a fusion's weight is
chosen without the test fold (changing the test fold's labels leaves it unchanged)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from pipeline import crossval, features
from pipeline.audio import AudioConfig
from pipeline.shards import ShardWriter

LABELS = ("angry", "happy", "sad")
SPEAKERS = ("s1", "s2", "s3", "s4")
CLIPS = 12  # per speaker: 4 of each label
OFFSET = {"s1": 0.0, "s2": 3.0, "s3": -2.0, "s4": 8.0}  # who is speaking moves every value
FEATURES = dataclasses.replace(features.FeatureConfig(), image="native", channels="gray", n_mels=8, n_mfcc=8, hop_length=160,
                               n_fft=256, extra=("compare", "egemaps"))
SHAPE = (8, 16, 1)


def write_workspace(root, flip_speaker: str | None = None, corpus_of: dict | None = None, without: tuple = ()):
    """manifest + one shard of synthetic rows: features and image carry the label plus a speaker offset.
    flip_speaker: that speaker's labels are rotated (a test fold's labels changed, nothing else); corpus_of:
    {speaker: corpus} (default: every speaker the demo's); without: (corpus, label) pairs left out."""
    rng = np.random.default_rng(0)
    rows, records = [], []
    for s in SPEAKERS:
        for i in range(CLIPS):
            label = LABELS[i % 3]
            if s == flip_speaker:
                label = LABELS[(i + 1) % 3]
            truth = LABELS.index(LABELS[i % 3])  # the audio does not change, only its label
            corpus = (corpus_of or {}).get(s, "demo")
            if (corpus, label) in without:
                continue
            utt = f"{s}_{i:02d}"
            # both views carry the label, neither perfectly: a fusion weight has something to choose
            compare = rng.normal(0, 1, 12).astype(np.float32) + OFFSET[s]
            compare[truth] += 1.5
            egemaps = rng.normal(0, 1, 6).astype(np.float32) + OFFSET[s]
            egemaps[truth] += 3.0
            db = rng.normal(-50 + 5 * OFFSET[s], 6, SHAPE).astype(np.float32)
            db[truth * 2:truth * 2 + 2] += 6.0
            db[:, :3] = -100.0  # padding on the floor
            raw = np.rint((np.clip(db, -100, 60) + 100) * (65535 / 160)).astype(np.uint16)
            rows.append({"corpus": corpus, "utt_id": utt, "speaker": f"{corpus}:{s}", "gender": "f", "label": label,
                         "content_hash": utt, "path": f"/nowhere/{utt}.wav", "text_id": str(i)})
            records.append({"name": f"{corpus.upper()}_{label}_{utt}.png", "image": features.encode_png(raw),
                            "item_id": utt, "utt_id": utt, "corpus": corpus, "speaker": f"{corpus}:{s}", "gender": "f",
                            "text_id": str(i),
                            "label": label, "augmented": False, "augmentation": "", "source_path": None,
                            "x_compare": compare, "x_egemaps": egemaps})
    processed = root / "data" / "processed"
    (processed / "shards").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(processed / "manifest.parquet")
    meta = {"labels": list(LABELS), "channels": "gray", "image_shape": list(SHAPE),
            "image_scale": {"static": [-100.0, 60.0]}, "audio": dataclasses.asdict(AudioConfig()),
            "features": dict(dataclasses.asdict(FEATURES), extra=list(FEATURES.extra))}
    writer = ShardWriter(processed / "shards", 1000, meta)
    for r in records:
        writer.add((r["corpus"],), r)
    writer.flush()


def params(model: str = "functionals", **train) -> dict:
    import yaml

    from pipeline.cli import check_every_section

    p = yaml.safe_load(open("params.yaml"))
    p["model"] = model
    p["split"].update(folds=4, val_ratio=0.34)  # leave-one-speaker-out; one validation speaker per fold
    p["crossval"].update(seeds=[1], refit=True, baseline=True)
    p["train"].update(dict(dict(epochs=3), **train))
    p["models"]["cnn_pooled"].update(filters=[4, 8])
    p["features"].update(image="native", channels="gray", n_mels=8, n_fft=256, hop_length=160, n_mfcc=8)  # as rendered
    check_every_section(p)
    return p


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    import shutil

    from tests.conftest import REPO

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    write_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def spy_training(monkeypatch) -> list:
    """Record, for every model crossval trains, the speakers of its training and validation rows."""
    calls = []
    real = crossval._train

    def spy(train_cfg, kinds, data, parts, classes, settings):
        speakers = data.meta["speaker"].to_numpy()
        calls.append({"train": set(speakers[parts["train"]]), "val": set(speakers[parts["val"]])})
        return real(train_cfg, kinds, data, parts, classes, settings)

    monkeypatch.setattr(crossval, "_train", spy)
    return calls


def test_cross_validation_invariants(workspace, monkeypatch):
    calls = spy_training(monkeypatch)
    models = workspace / "fold_models"
    crossval.run(params(), save_models=models, out=workspace / "cv")
    pred = pd.read_csv(workspace / "cv" / "predictions.csv")
    folds = pd.read_csv(workspace / "cv" / "folds.csv")
    cv = json.loads((workspace / "cv" / "cv.json").read_text())["cv"]
    mine = pred[(pred["system"] == "functionals") & (pred["mode"] == "transductive")]
    # every speaker tested exactly once; pooled and mean UAR are scikit-learn's balanced accuracy
    assert sorted(mine["speaker"]) == sorted(f"demo:{s}" for s in SPEAKERS for _ in range(CLIPS))
    assert cv["uar_pooled"] == pytest.approx(balanced_accuracy_score(mine["actual"], mine["predicted"]), abs=1e-4)
    per_fold = [balanced_accuracy_score(g["actual"], g["predicted"]) for _, g in mine.groupby("fold")]
    assert cv["uar_mean"] == pytest.approx(np.mean(per_fold), abs=1e-4)
    assert cv["uar_std"] == pytest.approx(np.std(per_fold), abs=1e-4)
    lo, hi = cv["uar_pooled_ci95"]
    assert lo <= cv["uar_pooled"] <= hi
    # no test speaker in any model's training or validation rows; the refit trains on train + val only
    tested = {k: set(g["speaker"]) for k, g in mine.groupby("fold")}
    assert len(calls) == 2 * len(tested)  # a model and its refit per fold
    for k, test_speakers in tested.items():
        first, refit = calls[2 * k], calls[2 * k + 1]
        assert not (first["train"] | first["val"] | refit["train"]) & test_speakers
        assert first["val"] and refit["train"] == first["train"] | first["val"] and not refit["val"]
        # the refit's population statistics are of its training rows, never the test speaker's
        card = json.loads((models / f"fold{k}_seed1" / "card.json").read_text())
        population = np.array(card["inputs"]["compare"]["normalisation"]["population"]["mean"])
        from pipeline.dataset import load_rows

        rows = load_rows("compare")
        train_rows = rows.meta["speaker"].isin(refit["train"]).to_numpy()
        np.testing.assert_allclose(population, rows.x[train_rows].mean(axis=0), rtol=1e-5, atol=1e-5)
        assert not np.allclose(population, rows.x.mean(axis=0), atol=1e-3)  # with the test rows it would differ
    # the validation speakers' predictions of step 1 are kept: the fold's validation speakers only, and what
    # its val UAR scores (so a choice made on validation can be re-examined offline)
    val = pd.read_csv(workspace / "cv" / "val_predictions.csv")
    for k in tested:
        first = val[(val["fold"] == k) & (val["system"] == "functionals") & (val["mode"] == "transductive")]
        assert set(first["speaker"]) == calls[2 * k]["val"]
        val_uar = folds.loc[(folds["system"] == "functionals") & (folds["mode"] == "transductive")
                            & (folds["fold"] == k), "val_uar"].item()
        assert val_uar == pytest.approx(balanced_accuracy_score(first["actual"], first["predicted"]), abs=1e-4)
    # the three ways a user meets the model are all measured, the enrolment clips left out of the scores
    modes = set(pred.loc[pred["system"] == "functionals", "mode"])
    assert modes == {"transductive", "enrolled5", "enrolled10", "enrolled_neutral", "cold"}
    enrolled = pred[(pred["system"] == "functionals") & (pred["mode"] == "enrolled10")]
    assert len(enrolled) == len(mine) - 10 * len(SPEAKERS)
    assert {"cv_cold", "cv_enrolled10", "baseline", "baseline_spknorm"} <= set(
        json.loads((workspace / "cv" / "cv.json").read_text()))
    assert set(folds["system"]) == {"functionals", "baseline_egemaps_svm"}


def test_fusion_weights_are_chosen_without_the_test_fold(tmp_path, monkeypatch):
    import shutil

    from tests.conftest import REPO

    weights, others = [], []
    for flip in (None, "s1"):
        root = tmp_path / (flip or "plain")
        root.mkdir()
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        write_workspace(root, flip_speaker=flip)
        monkeypatch.chdir(root)
        p = params("fusion", epochs=10)
        p["models"]["fusion"]["weight"] = None  # chosen on the validation speakers, the choice under test
        crossval.run(p, out=root / "cv")
        folds = pd.read_csv(root / "cv" / "folds.csv")
        pred = pd.read_csv(root / "cv" / "predictions.csv")
        fold_of_s1 = int(pred.loc[pred["speaker"] == "demo:s1", "fold"].iloc[0])
        mine = folds[folds["system"] == "fusion"]
        weights.append(mine.loc[mine["fold"] == fold_of_s1, "fusion_weight"].tolist())
        others.append(pred.loc[(pred["system"] == "fusion") & (pred["fold"] != fold_of_s1), "p_angry"].tolist())
    print("fusion weights of the flipped speaker's fold:", weights)
    assert weights[0] == weights[1] and len(weights[0]) == 5  # one per mode row of that fold (neutral enrolment too)
    assert others[0] != others[1]  # the flipped labels did train the other folds' models


def test_runs_made_apart_merge_into_the_figures_of_one_run(workspace):
    """crossval --merge: seeds 1 and 2 run apart and merged give the cv.json of one run of seeds [1, 2]."""
    p = params()
    p["crossval"].update(refit=False)  # what is merged is the same with or without the refit; half the trainings
    whole = dict(p, crossval=dict(p["crossval"], seeds=[1, 2]))
    crossval.run(whole, out=workspace / "both")
    for seed in (1, 2):
        crossval.run(dict(p, crossval=dict(p["crossval"], seeds=[seed])), out=workspace / f"seed{seed}")
    crossval.merge([workspace / "seed1", workspace / "seed2"], workspace / "merged", p)
    one = json.loads((workspace / "both" / "cv.json").read_text())
    merged = json.loads((workspace / "merged" / "cv.json").read_text())
    assert merged == one and merged["cv"]["seeds"] == 2
    assert len(pd.read_csv(workspace / "merged" / "folds.csv")) == len(pd.read_csv(workspace / "both" / "folds.csv"))
    with pytest.raises(crossval.UserError, match="in two of the runs"):
        crossval.merge([workspace / "seed1", workspace / "seed1"], workspace / "twice", p)
