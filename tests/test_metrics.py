"""The one evaluation function: WA, UA, F1s and the confusion matrix, on hand-checked cases."""
import numpy as np
import pytest

from pipeline.metrics import evaluate_predictions, top_confusions

LABELS = ["angry", "happy", "sad"]


def test_wa_ua_f1_and_confusion_on_a_hand_checked_case():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 0, 2, 2]
    r = evaluate_predictions(y_true, y_pred, LABELS)
    assert r["accuracy"] == pytest.approx(6 / 8)
    assert r["uar"] == pytest.approx((3 / 4 + 1 / 2 + 1) / 3)
    assert r["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    f_angry = 2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4)
    f_happy = 2 * 0.5 * 0.5 / 1.0
    assert r["macro_f1"] == pytest.approx((f_angry + f_happy + 1) / 3)
    assert r["weighted_f1"] == pytest.approx((4 * f_angry + 2 * f_happy + 2 * 1) / 8)
    assert r["per_class"]["angry"]["support"] == 4


def test_absent_class_does_not_count_in_uar_and_loss_is_cross_entropy():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])
    r = evaluate_predictions([0, 1], [0, 1], LABELS, probs)
    assert r["uar"] == 1.0 and r["macro_f1"] == 1.0
    assert r["loss"] == pytest.approx(-(np.log(0.9) + np.log(0.7)) / 2)


def test_top_confusions_are_sorted_by_count():
    top = top_confusions([0, 0, 0, 1, 2, 2], [1, 1, 2, 0, 0, 0], LABELS, k=2)
    assert top == [{"actual": "angry", "predicted": "happy", "count": 2},
                   {"actual": "sad", "predicted": "angry", "count": 2}]
