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


def _sklearn_metrics(y_true, y_pred, n):
    """The headline numbers as scikit-learn computes them, on its default labels."""
    import warnings

    from sklearn import metrics as sk

    with warnings.catch_warnings():  # its zero-division and "y_pred contains classes not in y_true" notices
        warnings.simplefilter("ignore")
        p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=range(n), zero_division=0)
        return {"accuracy": sk.accuracy_score(y_true, y_pred),
                "uar": sk.balanced_accuracy_score(y_true, y_pred),
                "macro_f1": sk.f1_score(y_true, y_pred, average="macro"),
                "weighted_f1": sk.f1_score(y_true, y_pred, average="weighted"),
                "confusion_matrix": sk.confusion_matrix(y_true, y_pred, labels=range(n)).tolist(),
                "per_class": (p, r, f, s)}


def _assert_equals_sklearn(y_true, y_pred, labels):
    ours = evaluate_predictions(y_true, y_pred, labels)
    ref = _sklearn_metrics(y_true, y_pred, len(labels))
    for key in ("accuracy", "uar", "macro_f1", "weighted_f1"):
        assert ours[key] == ref[key], key  # exactly, not approximately
    assert ours["confusion_matrix"] == ref["confusion_matrix"]
    for i, lab in enumerate(labels):
        got = ours["per_class"][lab]
        assert [got["precision"], got["recall"], got["f1"]] == [float(ref["per_class"][k][i]) for k in range(3)], lab
        assert got["support"] == ref["per_class"][3][i]


def test_a_class_predicted_but_absent_from_the_test_labels_counts_as_sklearn_does():
    # the case: "sad" is predicted once but no test file is sad (a corpus without that class)
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 2, 1, 1, 1]
    r = evaluate_predictions(y_true, y_pred, LABELS)
    assert r["macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)  # leaving "sad" out gave 0.9
    assert r["uar"] == pytest.approx((2 / 3 + 1) / 2)  # recall only over classes in y_true
    _assert_equals_sklearn(y_true, y_pred, LABELS)


@pytest.mark.parametrize("seed", range(20))
def test_headline_metrics_equal_sklearn_on_random_predictions_and_per_corpus_subsets(seed):
    rng = np.random.default_rng(seed)
    labels = [f"c{i}" for i in range(7)]
    n = int(rng.integers(1, 60))
    y_true = rng.integers(0, 5, n)          # classes 5 and 6 never in the labels...
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, 7, n))  # ...but sometimes predicted
    _assert_equals_sklearn(y_true, y_pred, labels)
    corpus = rng.integers(0, 3, n)          # evaluate's per-corpus tables score each subset alone
    for c in np.unique(corpus):
        m = corpus == c
        _assert_equals_sklearn(y_true[m], y_pred[m], labels)
