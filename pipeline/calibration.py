"""Probabilities that mean what they say: temperature scaling fitted on validation speakers, and the expected
calibration error (ECE) that measures it.

A model trained on some speakers is more sure of itself on a new one than it is right, most of all on one file of a
stranger (cold); a user who acts on "angry, 0.9", or abstains below a confidence (`predict --min-confidence`),
needs 0.9 to be right nine times in ten. Temperature scaling (Guo et al. 2017) divides the log-probabilities by
one number T fitted by likelihood on held-out rows: the decision (the arg max) never changes, only how sure it
sounds. One T for each way of meeting a speaker that predict can tell apart (GROUPS): the speaker's own
statistics, enrolled ones, none (cold); a stranger's file is the most overconfident.

Cross-validation (pipeline/crossval.py) fits fold k's temperatures on the validation predictions of the other
folds whose validation speakers are not fold k's test speakers (a fold's own one or two validation speakers are
too few to fit on; a test speaker's rows are never used to calibrate its own, though the other folds' models
were trained on them: one number per way, fitted on other speakers' rows), and reports each way's ECE before
and after; the final model's card (pipeline/final.py) carries T fitted on every fold's validation predictions,
and predict applies it (model_card.calibrate). Numpy and scipy only: predict and the exported bundle run it.
"""
from __future__ import annotations

import numpy as np

BINS = 10  # equal-width confidence bins for the ECE
T_RANGE = (0.2, 10.0)  # a temperature outside this says something else is wrong
# the ways a user meets a model, by what predict can tell: all of the speaker's recordings, a few enrolled, or
# none (cold); each is sure of itself to another degree (a few clips' statistics are noisier than many)
GROUPS = {"transductive": "speaker", "enrolled10": "enrolled", "enrolled5": "enrolled",
          "enrolled_neutral": "enrolled", "cold": "cold"}


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities with their log divided by T and renormalised (T > 1: less sure; the arg max unchanged)."""
    logits = np.log(np.maximum(np.asarray(probs, dtype=np.float64), np.finfo(np.float32).tiny)) / float(temperature)
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=-1, keepdims=True)


def fit_temperature(probs: np.ndarray, actual: np.ndarray) -> float:
    """T minimising the negative log-likelihood of the true classes (indices) under scaled(probs, T)."""
    from scipy.optimize import minimize_scalar

    probs, actual = np.asarray(probs, dtype=np.float64), np.asarray(actual, dtype=int)
    if len(actual) == 0:
        return 1.0

    def nll(t: float) -> float:
        return -float(np.mean(np.log(np.maximum(scaled(probs, t)[np.arange(len(actual)), actual], 1e-300))))

    return round(float(minimize_scalar(nll, bounds=T_RANGE, method="bounded", options={"xatol": 1e-4}).x), 4)


def ece(probs: np.ndarray, actual: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: over equal-width bins of the top probability, the gap between how sure the
    rows were and how often they were right, weighted by the bin's share of the rows."""
    probs, actual = np.asarray(probs, dtype=np.float64), np.asarray(actual, dtype=int)
    if len(actual) == 0:
        return float("nan")
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == actual
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        rows = which == b
        if rows.any():
            gap += rows.mean() * abs(right[rows].mean() - confidence[rows].mean())
    return round(float(gap), 4)


def probabilities(frame, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, true class index) of predictions.csv rows whose true class their model knows: a class a
    fold's model lacks has an empty column there (probability 0 for its other rows); a row of that class says
    nothing of how sure the model is, and its log-likelihood alone would drive the temperature to its bound."""
    raw = frame[[f"p_{c}" for c in classes]].to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(classes)}
    actual = np.array([index.get(a, -1) for a in frame["actual"]], dtype=int)
    known = actual >= 0
    known[known] = ~np.isnan(raw[np.flatnonzero(known), actual[known]])
    return np.nan_to_num(raw[known], nan=0.0), actual[known]


def classes_of(frame) -> list[str]:
    """The classes a prediction frame's rows have probabilities for (the model's; a fold may lack one)."""
    return [c[2:] for c in frame.columns if c.startswith("p_") and frame[c].notna().any()]


def calibrated_predictions(pred, val_pred, system: str):
    """`system`'s test predictions with their p_<class> columns scaled as crossval calibrates them: each fold's
    rows by temperatures fitted on the other folds' validation predictions whose speakers are not its test speakers
    (per GROUPS), and a `temperature` column. None without validation predictions or probabilities."""
    if val_pred is None or not len(val_pred):
        return None
    mine_val = val_pred[val_pred["system"] == system]
    mine = pred[pred["system"] == system]
    classes = classes_of(mine) if len(mine) else []
    if not classes:  # a system without probabilities (the SVM baseline)
        return None
    columns = [f"p_{c}" for c in classes]
    out = mine.copy()
    out[columns] = out[columns].astype(np.float64)  # scaled probabilities can be far below float32's range
    out["temperature"] = 1.0
    for (mode, fold, seed), test in mine.groupby(["mode", "fold", "seed"], sort=False):
        group = [m for m, g in GROUPS.items() if g == GROUPS.get(mode, "speaker")]
        val = mine_val[mine_val["mode"].isin(group) & (mine_val["seed"] == seed)]
        touched = set(val.loc[val["speaker"].isin(set(test["speaker"])), "fold"])  # folds that validated on them
        val = val[~val["fold"].isin(touched | {fold})]
        t = fit_temperature(*probabilities(val, classes)) if len(val) else 1.0
        out.loc[test.index, columns] = scaled(np.nan_to_num(test[columns].to_numpy(dtype=np.float64)), t)
        out.loc[test.index, "temperature"] = t
    return out


def cv_calibration(pred, val_pred, system: str) -> dict:
    """{mode: {"ece": after, "ece_uncalibrated": before, "temperature_median": ...}} of `system`'s test
    predictions, calibrated as calibrated_predictions does."""
    after = calibrated_predictions(pred, val_pred, system)
    if after is None:
        return {}
    before = pred.loc[after.index]
    classes = classes_of(before)
    return {mode: {"ece": ece(*probabilities(after.loc[rows.index], classes)),
                   "ece_uncalibrated": ece(*probabilities(rows, classes)),
                   "temperature_median": round(float(after.loc[rows.index].groupby(["fold", "seed"])["temperature"]
                                                     .first().median()), 3)}
            for mode, rows in before.groupby("mode", sort=False)}


def temperatures(val_pred, system: str) -> dict:
    """{group: T} fitted on every validation prediction of `system` (the final model's card)."""
    mine = val_pred[val_pred["system"] == system]
    out = {}
    for group in sorted(set(GROUPS.values())):
        rows = mine[mine["mode"].isin([m for m, g in GROUPS.items() if g == group])]
        if len(rows):
            classes = classes_of(mine)
            out[group] = fit_temperature(*probabilities(rows, classes))
    return out
