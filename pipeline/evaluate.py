"""Stage 6, evaluate: the trained model on the test split.

metrics/metrics.json holds the headline numbers for `dvc exp show` and `dvc metrics diff`, under `test`
(test.accuracy, test.uar, test.macro_f1, test.weighted_f1, test.loss, test.files, test.model);
metrics/per_class.json the per-class, per-corpus and top-confusion tables;
metrics/predictions.csv feeds the confusion-matrix plot in dvc.yaml; metrics/confusion_matrix.png
is the same matrix for people; metrics/report.md the experiment report, with metrics/examples/timeline.png: a test
speaker's clips joined into one recording and scored as predict --segments scores one.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.io import atomic_path, write_csv, write_json
from pipeline.metrics import evaluate_predictions, top_confusions
from pipeline.params import load
from pipeline.paths import CARD, CONFUSION_PNG, MODEL, PER_CLASS, PREDICTIONS, REPORT_MD, TEST_METRICS

log = logging.getLogger("pipeline.evaluate")

HEADLINE = ("accuracy", "uar", "macro_f1", "weighted_f1", "loss")


def load_model_file(path: Path):
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow()
    from pipeline.zoo import load_model as load_zoo_model  # registers the zoo's custom layers

    return load_zoo_model(path)


def load_model():
    """(Keras model, its card) from models/; the card says how its input is made (pipeline/model_card)."""
    from pipeline import model_card

    if not MODEL.exists():
        raise UserError(f"{MODEL} not found: train a model first (dvc repro train)")
    card = model_card.read(CARD)
    return load_model_file(MODEL), card


def predict_split(model, card: dict, split: str = "test", batch_size: int = 64, cold: bool = False):
    """The split's rows scored by the model, after checking the shards were made as the model's input was:
    each speaker normalised on its own clips (transductive), or with `cold` on no speaker statistics."""
    from pipeline import model_card
    from pipeline.dataset import load_split, shard_files

    model_card.check_matches(card, model_card.shard_settings(shard_files()), f"the {split} shards")
    data = load_split(split, model_card.input_kinds(card))
    if len(data) == 0:
        raise UserError(f"the {split} split is empty: nothing to evaluate")
    x, _ = model_card.model_inputs(data.inputs, card, speakers=None if cold else data.speakers)
    from pipeline.runtime import predict_inputs

    probs = predict_inputs(model, model_card.as_model_input(x), batch_size)
    return data, probs


def evaluate(data, probs: np.ndarray, labels: list[str]) -> dict:
    index = {lab: i for i, lab in enumerate(labels)}
    known = np.array([lab in index for lab in data.labels])
    if not known.all():
        log.warning("%d test files have labels the model was not trained on (%s); they are scored as errors",
                    (~known).sum(), ", ".join(sorted(set(data.labels[~known]))))
    all_labels = labels + sorted(set(data.labels[~known]))
    full_index = {lab: i for i, lab in enumerate(all_labels)}
    y_true = np.array([full_index[lab] for lab in data.labels])
    y_pred = probs.argmax(axis=1)
    padded = np.zeros((len(probs), len(all_labels)), dtype=np.float32)
    padded[:, :len(labels)] = probs
    overall = evaluate_predictions(y_true, y_pred, all_labels, padded)
    overall["top_confusions"] = top_confusions(y_true, y_pred, all_labels)
    per_corpus = {}
    for corpus in sorted(set(data.meta["corpus"])):
        m = (data.meta["corpus"] == corpus).to_numpy()
        r = evaluate_predictions(y_true[m], y_pred[m], all_labels, padded[m])
        per_corpus[corpus] = {"accuracy": r["accuracy"], "uar": r["uar"], "macro_f1": r["macro_f1"],
                              "support": r["support"], "top_confusions": top_confusions(y_true[m], y_pred[m],
                                                                                         all_labels)}
    overall["per_corpus"] = per_corpus
    overall["y_true"], overall["y_pred"], overall["all_labels"] = y_true, y_pred, all_labels
    return overall


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def headline_metrics(result: dict, model: str | None) -> dict:
    """What metrics/metrics.json holds under `test`. Nested, so `dvc exp show` names the columns test.uar ...
    beside DVCLive's train.* and val.*, and `model` does not clash with the param of that name (DVC prefixes
    a name two files share with the file path, in both columns)."""
    return dict({k: round(result[k], 4) for k in HEADLINE if k in result}, files=result["support"], model=model)


def run(params: dict) -> dict:
    model, info = load_model()
    labels = info["labels"]
    data, probs = predict_split(model, info)
    result = evaluate(data, probs, labels)
    y_true, y_pred, all_labels = result.pop("y_true"), result.pop("y_pred"), result.pop("all_labels")
    headline = headline_metrics(result, info.get("model"))  # the model's own name, from its card
    # the same files with no statistics of their speakers: what a user with one recording of a stranger gets
    _, cold_probs = predict_split(model, info, cold=True)
    headline["cold_uar"] = round(evaluate(data, cold_probs, labels)["uar"], 4)
    write_json(TEST_METRICS, {"test": headline})
    write_json(PER_CLASS, {"per_class": result["per_class"], "per_corpus": result["per_corpus"],
                           "top_confusions": result["top_confusions"], "labels": all_labels,
                           "confusion_matrix": result["confusion_matrix"]})
    pred = pd.DataFrame({"name": data.meta["name"], "corpus": data.meta["corpus"], "speaker": data.meta["speaker"],
                         "actual": [all_labels[i] for i in y_true], "predicted": [all_labels[i] for i in y_pred],
                         "confidence": probs.max(axis=1).round(4), "path": data.meta["source_path"]})
    write_csv(PREDICTIONS, pred)
    plot_confusion(result["confusion_matrix"], all_labels, CONFUSION_PNG,
                   f"{info.get('model')}: test accuracy {result['accuracy']:.3f}, UAR {result['uar']:.3f}")
    from pipeline import model_card
    from pipeline.predict import LazyModel
    from pipeline.report import TIMELINE_PNG, write_report, write_timeline

    # a test speaker's clips joined into one recording, through predict --segments with this model (loaded as
    # predict loads it: a second or two)
    timeline = write_timeline(LazyModel(MODEL, model_card.input_kinds(info)), info)
    write_report(REPORT_MD, params, headline, result, timeline)
    print(f"evaluate: {result['support']} test files: " + ", ".join(f"{k} {v:.4f}" for k, v in headline.items()
                                                                    if isinstance(v, float)))
    for corpus, r in result["per_corpus"].items():
        print(f"  {corpus:<8} accuracy {r['accuracy']:.4f}  uar {r['uar']:.4f}  ({r['support']} files)")
    if result["top_confusions"]:
        print("  most frequent confusions: " + "; ".join(f"{c['actual']}->{c['predicted']} {c['count']}"
                                                        for c in result["top_confusions"][:5]))
    if timeline:
        print(f"  timeline: {timeline['clips']} test clips of {timeline['speaker']} joined "
              f"({timeline['seconds']:.0f} s), {sum(r['start'] is not None for r in timeline['segments'])} "
              f"segments -> {TIMELINE_PNG}")
    return headline


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline evaluate", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
