"""Calibration (pipeline/calibration.py): the ECE measures what it says, temperature scaling fitted on held-out
rows mends an overconfident model without changing a decision, cross-validation never calibrates a fold on its
own test speakers, and predict scales a row by the temperature of the way it met its speaker."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import calibration, model_card

RNG = np.random.default_rng(0)


def overconfident(n: int = 2000, classes: int = 4, sharpen: float = 3.0):
    """Rows drawn from calibrated probabilities, then reported sharpened (log-probabilities x sharpen)."""
    logits = RNG.normal(0, 1.0, (n, classes))
    true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    actual = np.array([RNG.choice(classes, p=p) for p in true_p])
    return calibration.scaled(true_p, 1.0 / sharpen), actual, true_p


def test_ece_is_the_gap_between_confidence_and_accuracy():
    p = np.tile([0.9, 0.1], (10, 1))
    assert calibration.ece(p, np.array([0] * 9 + [1])) == pytest.approx(0.0)
    assert calibration.ece(p, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.4)


def test_a_temperature_fitted_on_held_out_rows_mends_an_overconfident_model():
    reported, actual, _ = overconfident()
    t = calibration.fit_temperature(reported[:1000], actual[:1000])
    assert t == pytest.approx(3.0, rel=0.15)  # the sharpening undone
    before = calibration.ece(reported[1000:], actual[1000:])
    after = calibration.ece(calibration.scaled(reported[1000:], t), actual[1000:])
    assert before > 0.1 and after < 0.05
    np.testing.assert_array_equal(calibration.scaled(reported, t).argmax(axis=1), reported.argmax(axis=1))


def frames(s0_validation: str = "honest"):
    """predictions.csv / val_predictions.csv of 3 folds: fold k tests speaker s<k> and validates on s<k+1>.
    s0_validation: the validation rows of s0 (fold 2's) honest, or confident and wrong; nothing else changes."""
    rng = np.random.default_rng(7)
    pred, val = [], []
    for fold, (test_spk, val_spk) in enumerate((("s0", "s1"), ("s1", "s2"), ("s2", "s0"))):
        for spk, out in ((test_spk, pred), (val_spk, val)):
            logits = rng.normal(0, 1.5, (200, 3))
            true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            actual = np.array([rng.choice(3, p=p) for p in true_p])
            reported = calibration.scaled(true_p, 0.5)  # twice as sure as it should be
            if out is val and spk == "s0" and s0_validation == "wrong":
                reported, actual = np.tile([0.01, 0.01, 0.98], (200, 1)), np.zeros(200, dtype=int)
            for mode in ("transductive", "cold"):
                out.append(pd.DataFrame({"system": "m", "mode": mode, "fold": fold, "seed": 1, "speaker": spk,
                                         "actual": np.array(["angry", "happy", "sad"])[actual],
                                         "p_angry": reported[:, 0], "p_happy": reported[:, 1],
                                         "p_sad": reported[:, 2]}))
    return pd.concat(pred, ignore_index=True), pd.concat(val, ignore_index=True)


def fold_temperatures(monkeypatch, pred, val) -> tuple[list, dict]:
    """The temperature cv_calibration fits for each fold and mode (fold 0 transductive, fold 0 cold, fold 1 ...),
    and its result."""
    fitted, real = [], calibration.fit_temperature
    monkeypatch.setattr(calibration, "fit_temperature", lambda p, y: fitted.append(real(p, y)) or fitted[-1])
    return fitted, calibration.cv_calibration(pred, val, "m")


def test_cross_validation_never_calibrates_a_fold_on_its_own_test_speakers(monkeypatch):
    honest, result = fold_temperatures(monkeypatch, *frames("honest"))
    changed, _ = fold_temperatures(monkeypatch, *frames("wrong"))
    # s0's validation rows (fold 2 validates on s0) change: fold 0, which tests s0, must not notice; fold 1 does
    # (it calibrates on fold 2's validation rows), which shows the rows matter where they are allowed
    assert changed[0] == honest[0] and changed[1] == honest[1]
    assert changed[2] != honest[2]
    assert {"ece", "ece_uncalibrated", "temperature_median"} <= set(result["cold"])
    assert result["cold"]["ece"] < result["cold"]["ece_uncalibrated"]  # reported sharpened: mended


def test_predict_scales_each_row_by_the_temperature_of_how_it_met_its_speaker():
    p = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2]], dtype=np.float32)
    card = {"calibration": {"temperature": {"speaker": 1.0, "enrolled": 1.0, "cold": 2.0}}}
    used = np.array(["speaker (12 clips)", "population of female speakers (0.91)", "recording (45 clips)"],
                    dtype=object)
    out = model_card.calibrate(p, card, used)
    np.testing.assert_allclose(out[[0, 2]], p[[0, 2]], rtol=1e-6)  # a recording on its own segments: a speaker
    assert out[1, 0] == pytest.approx(np.sqrt(0.8) / (np.sqrt(0.8) + np.sqrt(0.2)), rel=1e-5)
    np.testing.assert_array_equal(model_card.calibrate(p, {}, used), p)  # no calibration in the card: as is


def test_near_certain_rows_calibrate_without_overflowing_their_columns():
    """crossval's prediction frames hold float32 probabilities; sharpened, near-certain rows fall below float32's
    range (the demo corpus, every validation row right)."""
    pred, val = frames("honest")
    for frame in (pred, val):  # every row right: 0.9 sure (the temperature goes below 1), or all but certain
        right = np.eye(3)[frame["actual"].map({"angry": 0, "happy": 1, "sad": 2})]
        sure = np.arange(len(frame)) % 2 == 0
        for j, c in enumerate(("p_angry", "p_happy", "p_sad")):
            frame[c] = np.where(right[:, j] > 0, np.where(sure, 1.0, 0.9), np.where(sure, 1e-20, 0.05)
                                ).astype(np.float32)
    out = calibration.calibrated_predictions(pred, val, "m")
    assert out["temperature"].max() < 1.0 and np.isfinite(out[["p_angry", "p_happy", "p_sad"]].to_numpy()).all()
    assert out[["p_angry", "p_happy", "p_sad"]].to_numpy().min() < 1e-45  # below float32's range, kept


def test_rows_of_a_class_the_model_lacks_do_not_set_the_temperature():
    """A fold whose model lacks a class leaves that class's column empty; its rows cannot say how sure the model
    is (their likelihood is 0 at any temperature) and must not push the temperature to its bound."""
    reported, actual, _ = overconfident(300, 3, 1.0)
    frame = pd.DataFrame({"actual": np.array(["angry", "happy", "sad"])[actual], "p_angry": reported[:, 0],
                          "p_happy": reported[:, 1], "p_sad": reported[:, 2], "p_fearful": np.nan})
    lacking = pd.DataFrame({"actual": ["fearful"] * 6, "p_angry": 0.5, "p_happy": 0.3, "p_sad": 0.2,
                            "p_fearful": np.nan})
    classes = ["angry", "happy", "sad", "fearful"]
    t_clean = calibration.fit_temperature(*calibration.probabilities(frame, classes))
    t_with = calibration.fit_temperature(*calibration.probabilities(pd.concat([frame, lacking]), classes))
    assert t_with == t_clean and t_clean < 2.0
