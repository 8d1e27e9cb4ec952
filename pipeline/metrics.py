"""The one evaluation function: always WA, UA, macro-F1, weighted-F1 and the confusion matrix.

Pure numpy, so tests and notebooks use it without Keras. WA (weighted accuracy) is plain accuracy;
UA (unweighted average recall, UAR) is the mean of per-class recalls, the SER standard because the
corpora are imbalanced. Every number equals scikit-learn's (see evaluate_predictions).
"""
from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def evaluate_predictions(y_true, y_pred, labels: list[str], probs: np.ndarray | None = None) -> dict:
    """y_true, y_pred: class indices into `labels`. Each headline number equals scikit-learn's
    (tests/test_metrics.py checks): UA is balanced_accuracy_score (mean recall over the classes present
    in y_true); the F1 averages are f1_score's over its default labels, the classes in y_true or y_pred, so
    a class predicted but absent from the test labels counts with F1 0 in macro-F1 (leaving it out
    flatters a corpus that lacks a class the model predicts). Zero divisions give 0, as sklearn's default."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    n = len(labels)
    cm = confusion(y_true, y_pred, n)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(float)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    # sklearn's form of 2PR/(P+R), written on counts so the floats match to the last bit
    f1 = np.divide(2 * tp, (support + predicted).astype(float), out=np.zeros(n), where=support + predicted > 0)
    present = support > 0
    seen = present | (predicted > 0)
    total = int(support.sum())
    out = {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "weighted_f1": float(np.average(f1[seen], weights=support[seen])) if total else 0.0,
        "support": total,
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
        "per_class": {lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                            "support": int(support[i])} for i, lab in enumerate(labels)},
    }
    if probs is not None and total:
        p = np.clip(np.asarray(probs, dtype=np.float64)[np.arange(total), y_true], 1e-7, 1.0)
        out["loss"] = float(-np.log(p).mean())
    return out


def top_confusions(y_true, y_pred, labels: list[str], k: int = 10) -> list[dict]:
    cm = confusion(np.asarray(y_true, int), np.asarray(y_pred, int), len(labels))
    pairs = [(int(cm[i, j]), labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
             if i != j and cm[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"actual": a, "predicted": p, "count": c} for c, a, p in pairs[:k]]
