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


def write_workspace(root, flip_speaker: str | None = None, corpus_of: dict | None = None, without: tuple = (),
                    image_shift: dict | None = None, drop: tuple = ()):
    """manifest + one shard of synthetic rows: features and image carry the label plus a speaker offset.
    flip_speaker: that speaker's labels are rotated (a test fold's labels changed, nothing else); corpus_of:
    {speaker: corpus} (default: every speaker the demo's); without: (corpus, label) pairs left out; image_shift:
    {speaker: k}, that speaker's image carries the label k places on (its two views disagree); drop: (speaker,
    label) pairs left out (a speaker whose classes are not even)."""
    rng = np.random.default_rng(0)
    rows, records = [], []
    for s in SPEAKERS:
        for i in range(CLIPS):
            label = LABELS[i % 3]
            if s == flip_speaker:
                label = LABELS[(i + 1) % 3]
            truth = LABELS.index(LABELS[i % 3])  # the audio does not change, only its label
            corpus = (corpus_of or {}).get(s, "demo")
            if (corpus, label) in without or (s, label) in drop:
                continue
            utt = f"{s}_{i:02d}"
            # both views carry the label, neither perfectly: a fusion weight has something to choose
            compare = rng.normal(0, 1, 12).astype(np.float32) + OFFSET[s]
            compare[truth] += 1.5
            egemaps = rng.normal(0, 1, 6).astype(np.float32) + OFFSET[s]
            egemaps[truth] += 3.0
            db = rng.normal(-50 + 5 * OFFSET[s], 6, SHAPE).astype(np.float32)
            seen = (truth + (image_shift or {}).get(s, 0)) % 3  # what the image says
            db[seen * 2:seen * 2 + 2] += 6.0
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


def make_workspace(root):
    import shutil

    from tests.conftest import REPO

    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    write_workspace(root, drop=(("s2", "sad"),))  # s2's classes uneven: a prior with its labels would differ


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def seed1_run(tmp_path_factory):
    """One cross-validation of seed 1 (no refit, one epoch: what is compared does not need more), run once for the
    tests that compare another run with it: the merge test's first run, the workers test's sequential loop.
    -> (its workspace, its params); its results in <workspace>/seed1. A test using it chdirs to the workspace and
    writes only under folders of its own there."""
    import copy

    root = tmp_path_factory.mktemp("seed1_run")
    make_workspace(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        p = params(epochs=1)
        p["crossval"].update(refit=False)  # what is merged is the same with or without the refit; half the trainings
        crossval.run(p, out=root / "seed1")
    return root, copy.deepcopy(p)


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


def only_the_folds_testing(monkeypatch, *speakers: str) -> None:
    """crossval cross-validates only the folds whose test speakers include one of `speakers`: every other fold's
    test rows are dropped from its split, so crossval skips it (`fold k: no test files`). A fold run keeps its
    index, split and seeded trainings, so its results are what the run of every fold gives it."""
    real = crossval.fold_splits

    def some_folds(manifest, split_cfg, notes):
        splits = real(manifest, split_cfg, notes)
        chosen = manifest["speaker"].isin(speakers).to_numpy()
        return [s if (s.to_numpy()[chosen] == "test").any() else s.mask(s == "test") for s in splits]

    monkeypatch.setattr(crossval, "fold_splits", some_folds)


# ------------------------------------------------------------------------------------- the invariant checks
# Each check below is shown to fail on a leak (the mutation tests at the end): a check that cannot fail proves
# nothing.

def speakers_tested(pred: pd.DataFrame) -> dict:
    mine = pred[(pred["system"] == "functionals") & (pred["mode"] == "transductive")]
    return {k: set(g["speaker"]) for k, g in mine.groupby("fold")}


def check_no_test_speaker_trains(calls: list, tested: dict) -> None:
    """No test speaker in any model's training or validation rows; the refit trains on train + val only."""
    assert len(calls) == 2 * len(tested)  # a model and its refit per fold
    for k, test_speakers in tested.items():
        first, refit = calls[2 * k], calls[2 * k + 1]
        assert not (first["train"] | first["val"] | refit["train"]) & test_speakers
        assert first["val"] and refit["train"] == first["train"] | first["val"] and not refit["val"]


def check_fitted_on_training_rows(models, calls: list, tested: dict) -> None:
    """Each refit's population statistics and class prior are of its training rows alone, never the test fold's."""
    from pipeline.dataset import load_rows

    rows = load_rows("compare")
    for k in tested:
        card = json.loads((models / f"fold{k}_seed1" / "card.json").read_text())
        train_rows = rows.meta["speaker"].isin(calls[2 * k + 1]["train"]).to_numpy()
        population = np.array(card["inputs"]["compare"]["normalisation"]["population"]["mean"])
        np.testing.assert_allclose(population, rows.x[train_rows].mean(axis=0), rtol=1e-5, atol=1e-5)
        counts = pd.Series(rows.labels[train_rows]).value_counts()
        prior = card["prior_correction"]["training_prior"]
        assert prior == pytest.approx({c: counts.get(c, 0) / train_rows.sum() for c in prior}, abs=1e-6)
        assert card["trained_on"] == {"speakers": len(calls[2 * k + 1]["train"]), "clips": int(train_rows.sum())}


def reference_bootstrap(pred: pd.DataFrame, labels: list, draws: int = 1000, seed: int = 0) -> list:
    """The speaker bootstrap written plainly: draw speakers with replacement, pool their clips, UAR per seed."""
    speakers = sorted(set(pred["speaker"]))
    by_speaker = {s: g for s, g in pred.groupby("speaker")}
    import warnings

    rng = np.random.default_rng(seed)
    stats = []
    warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")  # a draw may lack a class
    for _ in range(draws):
        drawn = pd.concat([by_speaker[speakers[i]] for i in rng.integers(0, len(speakers), size=len(speakers))])
        stats.append(np.mean([balanced_accuracy_score(g["actual"], g["predicted"]) for _, g in drawn.groupby("seed")]))
    return [round(float(v), 4) for v in np.percentile(stats, [2.5, 97.5])]


def check_bootstrap_resamples_speakers(pred: pd.DataFrame, labels: list, interval: list) -> None:
    assert interval == pytest.approx(reference_bootstrap(pred, labels), abs=2e-4)


def check_enrolled_on_drawn_clips_only() -> None:
    """An enrolled row is normalised on the speaker's drawn clips alone: changing a scored clip of the speaker
    changes no other scored row (with the statistics of all its clips, every row would move)."""
    from pipeline import model_card
    from pipeline.normalisation import SpeakerNormaliser

    rng = np.random.default_rng(5)
    norm = SpeakerNormaliser(layout="vector", mode="speaker")
    norm.fit(rng.normal(0, 1, (40, 3)).astype(np.float32), speakers=np.repeat(["a", "b", "c", "d"], 10).astype(object))
    card = model_card.make("functionals", ["angry", "sad"], {"compare": ((3,), norm)},
                           {"audio": {}, "features": {}})
    speakers = np.array(["new"] * 30, dtype=object)
    x = rng.normal(4, 2, (30, 3)).astype(np.float32)
    for mode in ("enrolled10", "enrolled5"):
        scored, before = model_card.inputs_by_mode({"compare": x}, speakers, card, seed=0)[mode]
        one = np.flatnonzero(scored)[0]  # a scored clip, not an enrolment clip
        changed = x.copy()
        changed[one] += 50.0
        _, after = model_card.inputs_by_mode({"compare": changed}, speakers, card, seed=0)[mode]
        others = np.arange(scored.sum()) != 0
        np.testing.assert_array_equal(before["compare"][others], after["compare"][others])


def test_cross_validation_invariants(workspace, monkeypatch):
    calls = spy_training(monkeypatch)
    models = workspace / "fold_models"
    crossval.run(params(), save_models=models, out=workspace / "cv")
    pred = pd.read_csv(workspace / "cv" / "predictions.csv")
    folds = pd.read_csv(workspace / "cv" / "folds.csv")
    cv = json.loads((workspace / "cv" / "cv.json").read_text())["cv"]
    mine = pred[(pred["system"] == "functionals") & (pred["mode"] == "transductive")]
    manifest = pd.read_parquet(workspace / "data" / "processed" / "manifest.parquet")
    # every speaker tested exactly once; pooled and mean UAR are scikit-learn's balanced accuracy
    assert sorted(mine["speaker"]) == sorted(manifest["speaker"])
    assert cv["uar_pooled"] == pytest.approx(balanced_accuracy_score(mine["actual"], mine["predicted"]), abs=1e-4)
    per_fold = [balanced_accuracy_score(g["actual"], g["predicted"]) for _, g in mine.groupby("fold")]
    assert cv["uar_mean"] == pytest.approx(np.mean(per_fold), abs=1e-4)
    assert cv["uar_std"] == pytest.approx(np.std(per_fold), abs=1e-4)
    check_bootstrap_resamples_speakers(mine, list(LABELS), cv["uar_pooled_ci95"])
    assert 0 <= cv["ece"] <= 1 and 0 <= cv["ece_uncalibrated"] <= 1  # calibration error beside UAR, each way
    tested = speakers_tested(pred)
    check_no_test_speaker_trains(calls, tested)
    check_fitted_on_training_rows(models, calls, tested)
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
    clips = manifest["speaker"].value_counts()
    assert len(enrolled) == len(mine) - 10 * int((clips > 10).sum())  # a speaker of 10 clips or fewer: none drawn
    check_enrolled_on_drawn_clips_only()
    assert {"cv_cold", "cv_enrolled10", "baseline", "baseline_spknorm"} <= set(
        json.loads((workspace / "cv" / "cv.json").read_text()))
    assert set(folds["system"]) == {"functionals", "baseline_egemaps_svm"}


def fusion_weights_of_a_relabelled_fold(tmp_path, monkeypatch) -> list:
    """The fusion weights chosen for s1's fold when s1's labels follow one view, then the other: s1's image says
    another label than its features, so a weight chosen with s1's labels would lean to the view they follow."""
    import shutil

    from tests.conftest import REPO

    only_the_folds_testing(monkeypatch, "demo:s1")  # the other folds' weights are not compared: not trained
    weights = []
    for flip in (None, "s1"):
        root = tmp_path / (flip or "plain")
        root.mkdir()
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        write_workspace(root, flip_speaker=flip, image_shift={"s1": 1})
        monkeypatch.chdir(root)
        p = params("fusion", epochs=3)
        p["crossval"].update(refit=False, baseline=False)  # the weight is chosen in step 1; the refit carries it
        p["models"]["fusion"]["weight"] = None  # chosen on the validation speakers, the choice under test
        crossval.run(p, out=root / "cv")
        folds = pd.read_csv(root / "cv" / "folds.csv")
        pred = pd.read_csv(root / "cv" / "predictions.csv")
        fold_of_s1 = int(pred.loc[pred["speaker"] == "demo:s1", "fold"].iloc[0])
        assert set(pred["fold"]) == {fold_of_s1}
        mine = folds[folds["system"] == "fusion"]
        weights.append(mine.loc[mine["fold"] == fold_of_s1, "fusion_weight"].tolist())
    print("fusion weights of the relabelled speaker's fold:", weights)
    return weights


def test_fusion_weights_are_chosen_without_the_test_fold(tmp_path, monkeypatch):
    weights = fusion_weights_of_a_relabelled_fold(tmp_path, monkeypatch)
    assert weights[0] == weights[1] and len(weights[0]) == 5  # one per mode row of that fold (neutral enrolment too)


def test_runs_made_apart_merge_into_the_figures_of_one_run(seed1_run, monkeypatch):
    """crossval --merge: seeds 1 and 2 run apart and merged give the cv.json of one run of seeds [1, 2]."""
    workspace, p = seed1_run  # seed 1's run
    monkeypatch.chdir(workspace)
    whole = dict(p, crossval=dict(p["crossval"], seeds=[1, 2]))
    crossval.run(whole, out=workspace / "both")
    crossval.run(dict(p, crossval=dict(p["crossval"], seeds=[2])), out=workspace / "seed2")
    crossval.merge([workspace / "seed1", workspace / "seed2"], workspace / "merged", p)
    one = json.loads((workspace / "both" / "cv.json").read_text())
    merged = json.loads((workspace / "merged" / "cv.json").read_text())
    assert merged == one and merged["cv"]["seeds"] == 2
    assert len(pd.read_csv(workspace / "merged" / "folds.csv")) == len(pd.read_csv(workspace / "both" / "folds.csv"))
    with pytest.raises(crossval.UserError, match="in two of the runs"):
        crossval.merge([workspace / "seed1", workspace / "seed1"], workspace / "twice", p)


# ----------------------------------------------------------------------------- mutations: leaks the checks catch

def test_a_population_fitted_with_the_test_fold_is_caught(workspace, monkeypatch):
    """Mutation: the normalisers' population statistics (and the prior) fitted on the training rows plus the test
    fold's; check_fitted_on_training_rows must fail."""
    import pipeline.train as train_module

    calls = spy_training(monkeypatch)
    spied, real_card, fold = crossval._train, train_module.build_card, {}

    def remember_the_test_fold(cfg, kinds, data, parts, classes, settings):
        if "test" in parts:  # step 1's parts name the test fold; the refit's do not
            fold.update(data=data, test=parts["test"])
        fold["train"] = parts["train"]
        return spied(cfg, kinds, data, parts, classes, settings)

    def card_with_the_test_fold(cfg, kinds, classes, train, settings):
        return real_card(cfg, kinds, classes, fold["data"].training(fold["train"] | fold["test"]), settings)

    monkeypatch.setattr(crossval, "_train", remember_the_test_fold)
    monkeypatch.setattr(train_module, "build_card", card_with_the_test_fold)
    p = params(epochs=1)  # what leaks is counted from rows, not learnt: one epoch shows it
    p["crossval"].update(baseline=False)
    crossval.run(p, save_models=workspace / "models", out=workspace / "cv")
    tested = speakers_tested(pd.read_csv(workspace / "cv" / "predictions.csv"))
    check_no_test_speaker_trains(calls, tested)  # the rows trained on are still clean: only the statistics leak
    with pytest.raises(AssertionError):
        check_fitted_on_training_rows(workspace / "models", calls, tested)


def test_a_prior_from_the_test_labels_is_caught(workspace, monkeypatch):
    """Mutation: the prior the probabilities are divided by counts the test fold's labels too."""
    import pipeline.train as train_module

    calls = spy_training(monkeypatch)
    spied, real_prior, fold = crossval._train, train_module.class_prior, {}

    def remember_the_test_fold(cfg, kinds, data, parts, classes, settings):
        if "test" in parts:
            fold.update(labels=data.labels[parts["test"]])
        return spied(cfg, kinds, data, parts, classes, settings)

    monkeypatch.setattr(crossval, "_train", remember_the_test_fold)
    monkeypatch.setattr(train_module, "class_prior", lambda labels, classes, class_weights=False: real_prior(
        np.concatenate([labels, fold["labels"]]), classes, class_weights))
    p = params(epochs=1)  # what leaks is counted from rows, not learnt: one epoch shows it
    p["crossval"].update(baseline=False)
    crossval.run(p, save_models=workspace / "models", out=workspace / "cv")
    with pytest.raises(AssertionError):
        check_fitted_on_training_rows(workspace / "models", calls,
                                      speakers_tested(pd.read_csv(workspace / "cv" / "predictions.csv")))


def test_enrolment_statistics_from_all_of_a_speakers_clips_are_caught(monkeypatch):
    """Mutation: an enrolled speaker normalised on all of its clips, the scored ones included."""
    from pipeline import model_card

    def enrolled_on_everything(raw, speakers, drawn, card, norms, neutral=False):
        statistics = {spk: model_card.speaker_statistics({k: v[speakers == spk] for k, v in raw.items()}, card,
                                                         norms=norms, neutral=neutral)
                      for spk in sorted(set(speakers[drawn].tolist()))}
        who = np.array([s if s in statistics else None for s in speakers[~drawn]], dtype=object)
        return ~drawn, model_card.model_inputs({k: v[~drawn] for k, v in raw.items()}, card, speakers=who,
                                               statistics=statistics, norms=norms)[0]

    monkeypatch.setattr(model_card, "_enrolled_inputs", enrolled_on_everything)
    with pytest.raises(AssertionError):
        check_enrolled_on_drawn_clips_only()


def test_a_bootstrap_over_clips_instead_of_speakers_is_caught():
    """Mutation: the interval drawn over clips (as if a speaker's clips were independent): narrower, and wrong."""
    rng = np.random.default_rng(1)
    rows = []
    for s, right in zip(("a", "b", "c", "d", "e"), (0.95, 0.9, 0.3, 0.85, 0.5)):  # speakers differ a lot
        for i in range(30):
            actual = LABELS[i % 3]
            predicted = actual if rng.random() < right else LABELS[(i + 1) % 3]
            rows.append({"speaker": s, "seed": 1, "actual": actual, "predicted": predicted})
    pred = pd.DataFrame(rows)
    check_bootstrap_resamples_speakers(pred, list(LABELS), crossval.bootstrap_ci(pred, list(LABELS)))

    def over_clips(pred, labels, draws=1000, seed=0):
        r = np.random.default_rng(seed)
        stats = [balanced_accuracy_score(*pred.iloc[r.integers(0, len(pred), len(pred))][["actual", "predicted"]]
                                         .to_numpy().T) for _ in range(draws)]
        return [round(float(v), 4) for v in np.percentile(stats, [2.5, 97.5])]

    with pytest.raises(AssertionError):
        check_bootstrap_resamples_speakers(pred, list(LABELS), over_clips(pred, list(LABELS)))


def test_a_fusion_weight_chosen_with_the_test_fold_is_caught(tmp_path, monkeypatch):
    """Mutation: the fusion's weight chosen on the validation speakers and the test fold together."""
    real = crossval._train

    def validation_with_the_test_fold(cfg, kinds, data, parts, classes, settings):
        leaked = dict(parts, val=parts["val"] | parts["test"]) if "test" in parts else parts
        return real(cfg, kinds, data, leaked, classes, settings)

    monkeypatch.setattr(crossval, "_train", validation_with_the_test_fold)
    weights = fusion_weights_of_a_relabelled_fold(tmp_path, monkeypatch)
    assert weights[0] != weights[1]  # the check of test_fusion_weights_are_chosen_without_the_test_fold fails


def test_folds_trained_in_worker_processes_give_the_sequential_results(seed1_run, monkeypatch):
    """crossval.workers: the (fold, seed) trainings in spawned processes give what the loop gives, row for row
    (two folds, one job per worker, against the sequential run's rows of those folds)."""
    workspace, p = seed1_run  # the loop: seed 1's run of every fold
    monkeypatch.chdir(workspace)
    only_the_folds_testing(monkeypatch, "demo:s1", "demo:s2")
    crossval.run(dict(p, crossval=dict(p["crossval"], workers=2)), out=workspace / "workers")
    loop, workers = (pd.read_csv(workspace / run / "predictions.csv") for run in ("seed1", "workers"))
    ran = sorted(set(workers["fold"]))
    assert len(ran) == 2 and len(set(loop["fold"])) == 4
    loop = loop[loop["fold"].isin(ran)].reset_index(drop=True)
    assert len(loop) == len(workers) and list(loop["name"]) == list(workers["name"])  # the same rows, same order
    probs = [c for c in loop.columns if c.startswith("p_")]
    np.testing.assert_allclose(workers[probs].to_numpy(float), loop[probs].to_numpy(float), atol=1e-5)
    assert (loop["predicted"] == workers["predicted"]).all()
    drop = ["seconds"]
    loop_folds = pd.read_csv(workspace / "seed1" / "folds.csv")
    pd.testing.assert_frame_equal(loop_folds[loop_folds["fold"].isin(ran)].reset_index(drop=True).drop(columns=drop),
                                  pd.read_csv(workspace / "workers" / "folds.csv").drop(columns=drop))
