"""Stage crossval: the headline result. K speaker folds x S seeds of the model, the field's baseline beside it.

One test split of a few speakers says little (the per-fold spread in the README's results table), so the
product's headline is a cross-validation: every speaker is tested once (per seed) by a model that never heard it,
and met the three ways a user can meet it (transductive, enrolled, cold: MODES).

    python -m pipeline crossval      (the `crossval` stage of dvc.yaml)

Speakers are dealt to `split.folds` folds per corpus (pipeline.split.speaker_folds: deterministic from
split.seed and the corpus alone; K = a corpus's speaker count is leave-one-speaker-out); for each fold the
other folds' speakers train, with `split.val_ratio` of them held out for validation, drawn from the next fold
(pipeline.split.fold_split), so that the validation speakers, like the test speakers, differ from fold to fold.
For each fold and each seed of `crossval.seeds`:
  1. train on the training speakers, score the validation speakers (val UAR: the number to choose settings
     by; the test folds are never used for that);
  2. with `crossval.refit` (default), train again on training + validation speakers with the same settings
     (the schedule's epochs, or the epoch early stopping chose in 1; a fusion's weight chosen in 1) and score
     the test speakers; else score the test speakers with the model of 1;
  3. score them the three ways a user meets the model: transductive (each test speaker normalised on all of
     its clips, the field's protocol), enrolled (on 5 or 10 drawn clips of the speaker, then not scored) and
     cold (no statistics of the speaker, one file of a stranger). A fusion's branches are scored alone too.
The baseline (`crossval.baseline`): openSMILE eGeMAPSv02 functionals + an RBF SVM (C=10), the field's
30-second reference, trained on the same folds' non-test speakers, with features standardised on the
training speakers and, as a second figure, per speaker. Its eGeMAPS is taken over each recording as read (its
own rate, no trim or level change), as the field computes it (features.RECORDING_KINDS).

Why a stage and not a queue of `dvc exp run -S split.fold=...` experiments: one process loads and decodes the
shards once and imports Keras once for all K x S trainings, and its result is one metrics file that
`dvc exp show` / `dvc metrics diff` compare between experiments like any other (`-S model=...` re-runs
train, evaluate and crossval only). Shards are split-independent, so nothing is re-rendered for a fold; the
single-fold path (`-S split.fold=k`, also queued) still works for looking at one fold in detail.

Writes metrics/cv.json (cv.* transductive, cv_enrolled10.*, cv_enrolled5.*, cv_cold.*, cv_enrolled_neutral.*, then
the baseline's: mean +- std over folds x seeds, pooled over all folds' test predictions with a speaker-bootstrap 95 % interval,
validation UAR), and metrics/cv/: folds.csv (one row per system x mode x fold x seed), predictions.csv (every
test prediction with its probabilities), val_predictions.csv (the same for the validation speakers, scored by
the model of step 1: to compare choices such as a fusion's weight on them), summary.json (per corpus, speaker and gender, confusion matrix,
timings), the pictures (pipeline/cv_pictures: uar_by_mode.png, uar_per_fold.png, confusion_by_mode.png and, with
several corpora, uar_by_corpus.png) and report.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.errors import ParamsError, UserError
from pipeline.io import atomic_path, write_csv, write_json, write_text
from pipeline.metrics import evaluate_predictions
from pipeline.params import boolean, load, number, section, seed_list
from pipeline.paths import CV_DIR, CV_SUMMARY, MANIFEST

log = logging.getLogger("pipeline.crossval")

HEADLINE = ("accuracy", "uar", "macro_f1")
BASELINE_SYSTEM = "baseline_egemaps_svm"
BASELINE_C = 10.0  # the reference's RBF SVM (shared/corpora/README: eGeMAPSv02 + RBF SVM C=10)


@dataclass(frozen=True)
class CrossvalConfig:
    seeds: tuple[int, ...]
    refit: bool
    baseline: bool
    workers: int = 1  # (fold, seed) trainings at once, each in its own process

    @classmethod
    def from_params(cls, params: dict) -> "CrossvalConfig":
        sec = section(params, "crossval", keys=("seeds", "refit", "baseline", "workers"))
        return cls(seeds=seed_list(sec, "seeds", "crossval"), refit=boolean(sec, "refit", "crossval", True),
                   baseline=boolean(sec, "baseline", "crossval", True),
                   workers=number(sec, "workers", "crossval", 1, lo=1, integer=True))


# ------------------------------------------------------------------------------------------------ folds

def fold_splits(manifest: pd.DataFrame, split_cfg, notes: list[str]) -> list[pd.Series]:
    """The train / val / test Series (manifest rows) of every fold."""
    from pipeline.split import fold_splits as every_fold  # split.folds auto: as many as the speakers allow

    return every_fold(manifest, split_cfg, notes)


def _row_splits(meta: pd.DataFrame, manifest: pd.DataFrame, split: pd.Series) -> np.ndarray:
    where = dict(zip(zip(manifest["corpus"], manifest["utt_id"]), split))
    return np.array([where.get(k) for k in zip(meta["corpus"], meta["utt_id"])], dtype=object)


# ------------------------------------------------------------------------------------------------ model

from pipeline.model_card import ENROL_CLIPS, MODES  # noqa: E402,F401 (the ways a user meets the model)


def _train(train_cfg, kinds: tuple, data, parts: dict, classes: list[str], settings: dict):
    """Fit on parts['train'] (validated on parts['val']) -> (model, card, history). Normalisers are fitted on
    the training rows alone; validation speakers are normalised on their own statistics."""
    from pipeline.model_card import inputs_by_mode, model_inputs
    from pipeline.train import build_card, fit, training_inputs

    tr = data.training(parts["train"])  # balanced as the train stage balances (pipeline/balancing.py)
    card = build_card(train_cfg, kinds, classes, tr, settings)
    x_tr, x_cold = training_inputs(train_cfg, tr.inputs, card, tr.speakers)
    va = data.subset(parts["val"]) if parts["val"].any() else None
    x_va = model_inputs(va.inputs, card, speakers=va.speakers)[0] if va is not None else None
    val_modes = (inputs_by_mode(va.inputs, va.speakers, card, train_cfg.seed)
                 if train_cfg.branches and va is not None else None)  # a fusion chooses its weight over them
    model, history, _, _ = fit(train_cfg, x_tr, tr.labels, classes, x_va, va.labels if va is not None else None,
                               verbose=0, val_modes=val_modes, x_cold=x_cold)
    return model, card, history


def keep(model, card: dict, where_to: Path) -> None:
    """A fold model and its card in where_to/ (model.keras, card.json), as predict --model takes them."""
    where_to.mkdir(parents=True, exist_ok=True)
    model.save(where_to / "model.keras")
    write_json(where_to / "card.json", card)


def branch_system(model: str) -> str:
    """The system name of a fusion's branch scored alone (folds.csv, predictions.csv, the bench scripts)."""
    return f"{model} (fusion branch)"


def prediction_frame(system: str, mode: str, fold: int, seed: int, part, predicted: np.ndarray,
                     probs: np.ndarray | None = None, classes: list[str] | None = None) -> pd.DataFrame:
    """The rows of predictions.csv (or val_predictions.csv) for one system, mode, fold and seed: each file with
    its speaker, actual and predicted label and, where known, the probability of every class."""
    frame = pd.DataFrame({"system": system, "mode": mode, "fold": fold, "seed": seed,
                          "corpus": part.meta["corpus"], "speaker": part.meta["speaker"],
                          "gender": part.meta["gender"], "name": part.meta["name"],
                          "path": part.meta["source_path"], "actual": part.labels, "predicted": predicted})
    if probs is not None:
        for j, lab in enumerate(classes):
            frame[f"p_{lab}"] = np.round(probs[:, j], 6)
    return frame


def scorer(model, kind: str | None = None):
    """inputs {kind: array} -> probabilities: of the model, or of its branch reading `kind` (a fusion's)."""
    from pipeline.runtime import predict_inputs
    from pipeline.model_card import as_model_input

    if kind is None:
        return lambda x: predict_inputs(model, as_model_input(x))
    branch = next(layer for layer in model.layers if hasattr(layer, "inputs") and layer.inputs
                  and layer.inputs[0].name == kind)
    return lambda x: predict_inputs(branch, x[kind])


def score_modes(predict, card: dict, part, seed: int) -> dict:
    """The rows' probabilities the ways a user meets the model (model_card.inputs_by_mode, enrolment on neutral
    clips included). predict: inputs -> probabilities (scorer). -> {mode: (bool mask of the rows scored, their
    probabilities)}."""
    from pipeline.model_card import inputs_by_mode

    return {mode: (scored, predict(x)) for mode, (scored, x) in
            inputs_by_mode(part.inputs, part.speakers, card, seed, labels=part.labels).items()}


def _epochs_run(train_cfg, history: dict) -> int:
    """Epochs for the refit: all of them with a fixed schedule, else where early stopping found the best."""
    if train_cfg.schedule != "plateau" or "val_loss" not in history:
        return train_cfg.epochs
    return int(np.argmin(history["val_loss"])) + 1


# ------------------------------------------------------------------------------------------------ baseline

def baseline_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, spk_train, spk_test,
                    per_speaker: bool) -> np.ndarray:
    """eGeMAPS + RBF SVM (C=10) predictions: features standardised on the training speakers, or each
    speaker on its own statistics (per_speaker; the test speakers' unlabeled audio included; a speaker with too
    few clips gets the training speakers' statistics, never the test fold's)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from pipeline.normalisation import SpeakerNormaliser

    if per_speaker:
        norm = SpeakerNormaliser(layout="vector", mode="speaker").fit(x_train)
        x_train = norm.normalise(x_train, spk_train).x
        x_test = norm.normalise(x_test, spk_test).x
    scaler = StandardScaler().fit(x_train)
    clf = SVC(kernel="rbf", C=BASELINE_C, gamma="scale").fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


# ------------------------------------------------------------------------------------------------ summary

def _metrics(actual, predicted, labels: list[str]) -> dict:
    index = {lab: i for i, lab in enumerate(labels)}
    return evaluate_predictions([index[a] for a in actual], [index[p] for p in predicted], labels)


def pooled_uar(pred: pd.DataFrame, labels: list[str]) -> float:
    """UAR of all folds' test predictions of each seed together, averaged over the seeds."""
    return float(np.mean([_metrics(g["actual"], g["predicted"], labels)["uar"] for _, g in pred.groupby("seed")]))


BOOTSTRAP = 1000


def bootstrap_ci(pred: pd.DataFrame, labels: list[str], draws: int = BOOTSTRAP, seed: int = 0) -> list[float]:
    """95 % interval of the pooled UAR, resampling speakers (not clips: a speaker's clips are not independent)
    with replacement; percentile bootstrap."""
    speakers = sorted(set(pred["speaker"]))
    index = {lab: i for i, lab in enumerate(labels)}
    n = len(labels)
    # per speaker and seed: counts of (actual, predicted), so a draw is a sum of confusion matrices
    seeds = sorted(set(pred["seed"]))
    cms = np.zeros((len(speakers), len(seeds), n, n))
    spk_index, seed_index = {s: i for i, s in enumerate(speakers)}, {s: i for i, s in enumerate(seeds)}
    np.add.at(cms, (pred["speaker"].map(spk_index).to_numpy(), pred["seed"].map(seed_index).to_numpy(),
                    pred["actual"].map(index).to_numpy(), pred["predicted"].map(index).to_numpy()), 1)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(draws):
        cm = cms[rng.integers(0, len(speakers), size=len(speakers))].sum(axis=0)  # (seeds, n, n)
        support = cm.sum(axis=2)
        recall = np.divide(np.diagonal(cm, axis1=1, axis2=2), support, out=np.full(support.shape, np.nan),
                           where=support > 0)
        stats.append(np.nanmean(np.nanmean(recall, axis=1)))
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def summarise(pred: pd.DataFrame, folds: pd.DataFrame, labels: list[str]) -> dict:
    """Per (system, mode): mean +- std over the (fold, seed) runs, pooled (all folds' test predictions of a seed
    together, then the mean over seeds) with a speaker-bootstrap 95 % interval, per corpus / speaker / gender
    (pooled), and the confusion matrix over every fold and seed."""
    out: dict = {}
    for (system, mode), runs in folds.groupby(["system", "mode"], sort=False):
        mine = pred[(pred["system"] == system) & (pred["mode"] == mode)]
        # in the order `dvc exp show` shows them: the pooled UAR and its interval first, the counts last
        entry: dict = {}
        for k in sorted(HEADLINE, key=lambda k: k != "uar"):
            pooled = [_metrics(g["actual"], g["predicted"], labels)[k] for _, g in mine.groupby("seed")]
            entry[f"{k}_pooled"] = round(float(np.mean(pooled)), 4)
            if k == "uar":
                entry["uar_pooled_ci95"] = bootstrap_ci(mine, labels)
            entry[f"{k}_mean"] = round(float(runs[k].mean()), 4)
            entry[f"{k}_std"] = round(float(runs[k].std(ddof=0)), 4)
            if k == "uar" and runs["val_uar"].notna().any():
                entry["val_uar_mean"] = round(float(runs["val_uar"].mean()), 4)
        entry.update(folds=int(runs["fold"].nunique()), seeds=int(runs["seed"].nunique()), runs=len(runs))
        entry["files"] = int(len(mine) / max(1, entry["seeds"]))
        breakdown = {}
        for column in ("corpus", "speaker", "gender"):
            breakdown[column] = {str(key): round(_metrics(g["actual"], g["predicted"], labels)["uar"], 4)
                                 for key, g in mine.groupby(mine[column].fillna("unknown"))}
        pooled_all = _metrics(mine["actual"], mine["predicted"], labels)
        breakdown["confusion_matrix"] = pooled_all["confusion_matrix"]  # counts over every fold and seed
        breakdown["per_class_recall"] = {lab: round(v["recall"], 4) for lab, v in pooled_all["per_class"].items()}
        out.setdefault(system, {})[mode] = {"headline": entry, "breakdown": breakdown}
    return out


MODE_NOTES = {"transductive": "each test speaker normalised on all of its own clips",
              "enrolled5": "on 5 enrolment clips of the speaker, not scored",
              "enrolled10": "on 10 enrolment clips of the speaker, not scored",
              "enrolled_neutral": "on up to 10 of the speaker's neutral clips (everyday speech), not scored",
              "cold": "no statistics of the speaker: one file from a stranger"}


def report_md(summary: dict, folds: pd.DataFrame, params: dict, timing: dict, notes: list[str],
              pictures: list[str] = (), pred: pd.DataFrame | None = None, model: str | None = None) -> str:
    """metrics/cv/report.md: the table of every system and mode, then each picture with the table of its numbers
    (cv_pictures), the per-fold rows, the breakdowns, the cold path's most confident errors and the timing."""
    s = params.get("split", {})
    lines = [f"# Cross-validation: {params.get('model')}", "",
             f"{s.get('folds')} speaker folds x seeds {list(CrossvalConfig.from_params(params).seeds)}; "
             f"split seed {s.get('seed')}, val_ratio {s.get('val_ratio')}; "
             f"normalisation {params.get('train', {}).get('normalisation')}", "",
             "Modes: " + "; ".join(f"{m}: {t}" for m, t in MODE_NOTES.items()) + ".", ""]
    lines += ["| system | mode | UAR mean ± std | UAR pooled [95 % CI] | accuracy mean ± std | macro-F1 mean ± std "
              "| val UAR | ECE (uncalibrated) | files |", "|---|---|---|---|---|---|---|---|---|"]
    for system, modes in summary.items():
        for mode, entry in modes.items():
            h = entry["headline"]
            lo, hi = h["uar_pooled_ci95"]
            lines.append(f"| {system} | {mode} | {h['uar_mean']:.3f} ± {h['uar_std']:.3f} | {h['uar_pooled']:.3f} "
                         f"[{lo:.3f}, {hi:.3f}] | {h['accuracy_mean']:.3f} ± {h['accuracy_std']:.3f} | "
                         f"{h['macro_f1_mean']:.3f} ± {h['macro_f1_std']:.3f} | {h.get('val_uar_mean', '')} | "
                         + (f"{h['ece']:.3f} ({h['ece_uncalibrated']:.3f})" if "ece" in h else "")
                         + f" | {h['files']} |")
    lines += _pictures_md(summary, folds, pictures, pred, model or params.get("model"))
    lines += ["", "## Per fold", "",
              "| system | mode | fold | seed | test speakers | files | accuracy | UAR | macro-F1 | val UAR |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in folds.itertuples():
        val = "" if pd.isna(r.val_uar) else f"{r.val_uar:.3f}"
        lines.append(f"| {r.system} | {r.mode} | {r.fold} | {r.seed} | {r.test_speakers} | {r.files} | "
                     f"{r.accuracy:.3f} | {r.uar:.3f} | {r.macro_f1:.3f} | {val} |")
    for system, modes in summary.items():
        for mode, entry in modes.items():
            b = entry["breakdown"]
            lines += ["", f"## {system} ({mode}): pooled UAR per corpus, gender and speaker", ""]
            for column in ("corpus", "gender", "speaker"):
                lines.append(f"- {column}: " + ", ".join(f"{k} {v:.3f}" for k, v in b[column].items()))
    lines += ["", "## Where the time went", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in timing.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _pictures_md(summary: dict, folds: pd.DataFrame, pictures, pred: pd.DataFrame | None, model: str) -> list[str]:
    """Each picture of cv_pictures that was written, under its question, with the table of its numbers."""
    from pipeline import cv_pictures as cp

    pictures = set(pictures)
    lines: list[str] = []
    if cp.PICTURES["uar_by_mode"] in pictures:
        lines += ["", "## Every system, each way of meeting a speaker", "",
                  f"![pooled UAR per way of meeting a speaker]({cp.PICTURES['uar_by_mode']})", "",
                  *cp.uar_by_mode_table(summary)]
    if cp.PICTURES["uar_per_fold"] in pictures:
        lines += ["", f"## {model}: from one test fold to the next", "",
                  f"![{model}: UAR per test fold]({cp.PICTURES['uar_per_fold']})", "",
                  *cp.uar_per_fold_table(folds, model)]
    if cp.PICTURES["uar_by_corpus"] in pictures:
        lines += ["", "## Per corpus", "", f"![pooled UAR per corpus]({cp.PICTURES['uar_by_corpus']})", "",
                  *cp.uar_by_corpus_table(summary)]
    if cp.PICTURES["confusion_by_mode"] in pictures:
        lines += ["", f"## {model}: what is taken for what", "",
                  f"![{model}: confusion matrix per way]({cp.PICTURES['confusion_by_mode']})", "",
                  "Counts summed over folds and seeds: `summary.json` (`breakdown.confusion_matrix`)."]
    if pred is not None and "cold" in summary.get(model, {}):
        errors = cp.confident_errors(pred, model, "cold")
        if len(errors):
            lines += ["", f"## {model}, cold: the most confident mistakes", "",
                      "One file of a stranger, the wrong class given the highest probability (every file: "
                      "`predictions.csv`, `p_*` columns):", "", *cp.confident_errors_table(errors)]
    return lines


# ------------------------------------------------------------------------------------------------ run

@dataclass
class FoldContext:
    """What every (fold, seed) training of a cross-validation reads: the rows, the folds, the settings."""
    data: object  # BalancedRows of every rendered original
    manifest: pd.DataFrame
    splits: list
    settings: dict
    kinds: tuple
    labels: list
    train_cfg: object
    refit: bool
    save_models: Path | None

    def parts(self, k: int) -> dict:
        where = _row_splits(self.data.meta, self.manifest, self.splits[k])
        return {name: where == name for name in ("train", "val", "test")}


def _record(system: str, mode: str, k: int, seed: int, test, scored: np.ndarray, predicted: np.ndarray,
            labels: list, probs: np.ndarray | None = None, classes: list | None = None, **extra):
    """One (system, mode, fold, seed) row of folds.csv and its test predictions."""
    part = test.subset(scored)
    m = _metrics(part.labels, predicted, labels)
    row = {"system": system, "mode": mode, "fold": k, "seed": seed,
           "test_speakers": " ".join(sorted(set(test.speakers))), "files": len(part),
           **{h: round(m[h], 4) for h in HEADLINE}, **extra}
    return row, prediction_frame(system, mode, k, seed, part, predicted, probs, classes)


def fold_seed(ctx: FoldContext, k: int, seed: int) -> dict:
    """Fold k with one seed: train (step 1), score the validation speakers, refit, score the test speakers every
    way a user meets the model, the fusion's branches too. -> {"folds": rows, "predictions": frames,
    "val_predictions": frames, "seconds": s}. The same in the parent process or in a worker (_in_processes)."""
    import keras

    data, labels, train_cfg = ctx.data, ctx.labels, ctx.train_cfg
    parts = ctx.parts(k)
    test = data.subset(parts["test"])
    fold_rows, pred_rows, val_pred_rows = [], [], []
    classes = [lab for lab in labels if lab in set(data.labels[parts["train"]])]
    t = time.perf_counter()
    cfg = dataclasses.replace(train_cfg, seed=seed)
    model, card, history = _train(cfg, ctx.kinds, data, parts, classes, ctx.settings)
    val_uar = {}  # per (branch, mode): the validation speakers met the three ways, to choose settings on
    if parts["val"].any():
        va = data.subset(parts["val"])
        for kind in (None, *cfg.branches):
            for mode, (scored, probs) in score_modes(scorer(model, kind), card, va, seed).items():
                predicted = np.asarray(classes)[probs.argmax(axis=1)]
                val_uar[kind, mode] = _metrics(va.labels[scored], predicted, labels)["uar"]
                system = train_cfg.model if kind is None else branch_system(cfg.branches[kind].model)
                val_pred_rows.append(prediction_frame(system, mode, k, seed, va.subset(scored), predicted,
                                                      probs, classes))
    epochs = _epochs_run(cfg, history)
    fusion = {"fusion_weight": history["fusion_weight"][0]} if "fusion_weight" in history else {}
    if ctx.refit and parts["val"].any():
        if ctx.save_models is not None:  # the model of step 1 too: the one the validation speakers met
            keep(model, card, Path(ctx.save_models) / f"fold{k}_seed{seed}" / "first")
        refit_parts = {"train": parts["train"] | parts["val"], "val": np.zeros(len(data), dtype=bool)}
        # a class only the validation speakers have becomes a training class of the refit
        classes = [lab for lab in labels if lab in set(data.labels[refit_parts["train"]])]
        refit = dataclasses.replace(cfg, epochs=epochs, schedule="cosine" if cfg.schedule == "cosine" else "constant",
                                    fusion_weight=fusion.get("fusion_weight", cfg.fusion_weight))
        model, card, _ = _train(refit, ctx.kinds, data, refit_parts, classes, ctx.settings)
    if ctx.save_models is not None:
        keep(model, card, Path(ctx.save_models) / f"fold{k}_seed{seed}")

    def record(*args, **extra) -> None:
        row, frame = _record(*args, **extra)
        fold_rows.append(row)
        pred_rows.append(frame)

    for mode, (scored, probs) in score_modes(scorer(model), card, test, seed).items():
        record(train_cfg.model, mode, k, seed, test, scored, np.asarray(classes)[probs.argmax(axis=1)], labels,
               probs, classes, val_uar=round(val_uar[None, mode], 4) if (None, mode) in val_uar else np.nan,
               epochs=epochs, seconds=round(time.perf_counter() - t, 1), **fusion)
    for kind, branch_cfg in cfg.branches.items():  # each input alone, trained as in the fusion
        for mode, (scored, probs) in score_modes(scorer(model, kind), card, test, seed).items():
            record(branch_system(branch_cfg.model), mode, k, seed, test, scored,
                   np.asarray(classes)[probs.argmax(axis=1)], labels, probs, classes, epochs=epochs, seconds=0.0,
                   val_uar=round(val_uar[kind, mode], 4) if (kind, mode) in val_uar else np.nan)
    seconds = time.perf_counter() - t
    keras.backend.clear_session()
    return {"folds": fold_rows, "predictions": pred_rows, "val_predictions": val_pred_rows, "seconds": seconds}


_WORKER: dict = {}  # a worker process's FoldContext, loaded once


def _share_the_gpu() -> None:
    import os

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: several processes share one GPU
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # TensorFlow: the same


def _worker_start(params: dict, save_models) -> None:
    _share_the_gpu()
    _WORKER["ctx"] = fold_context(params, save_models)


def _worker_job(job: tuple) -> tuple:
    return job, fold_seed(_WORKER["ctx"], *job)


def _in_processes(jobs: list, params: dict, save_models, workers: int):
    """(job, result) of every (fold, seed) job, `workers` at a time in spawned processes (each loads the shards
    and imports Keras once): folds at once keep a GPU busy that one small fold at a time leaves waiting on each
    step's overhead. Each training is seeded as in the parent, so the results are those of the loop."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_start, initargs=(params, save_models)) as pool:
        try:
            for future in as_completed([pool.submit(_worker_job, job) for job in jobs]):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # a failed training: do not wait for the queued ones
            raise


def fold_context(params: dict, save_models=None, notes: list | None = None) -> FoldContext:
    """The rows and folds every training of a cross-validation reads (a worker process builds its own)."""
    from pipeline import model_card, zoo
    from pipeline.backend import has_gpu, quiet_tensorflow
    from pipeline.balancing import balanced
    from pipeline.dataset import load_rows, shard_files
    from pipeline.split import SplitConfig
    from pipeline.train import TrainConfig

    quiet_tensorflow()
    # every fold builds new models, whose predict functions TensorFlow traces anew: expected here, not a leak
    logging.getLogger("tensorflow").addFilter(lambda record: "retracing" not in record.getMessage())
    train_cfg = TrainConfig.from_params(params)
    kinds = zoo.input_kinds(train_cfg.model)
    train_cfg.set_precision_policy(has_gpu())  # as the train stage: mixed precision on a GPU
    from pipeline import distribute

    distribute.configure(train_cfg.distribution, train_cfg.batch_size)
    manifest = pd.read_parquet(MANIFEST)
    splits = fold_splits(manifest, SplitConfig.from_params(params), notes if notes is not None else [])
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731 (copies follow one split)
    data = balanced(load_rows(kinds, select=originals), params,
                    copies=lambda: load_rows(kinds, select=lambda meta: ~originals(meta)))
    settings = model_card.shard_settings(shard_files())
    labels = [lab for lab in TARGET_LABELS if lab in set(data.labels)]
    return FoldContext(data=data, manifest=manifest, splits=splits, settings=settings, kinds=kinds, labels=labels,
                       train_cfg=train_cfg, refit=CrossvalConfig.from_params(params).refit, save_models=save_models)


def run(params: dict, save_models: Path | None = None, out: Path | None = None) -> dict:
    """The cross-validation. `save_models`: also keep each fold model (and its card) there, for a close look
    or to check that predict meets a file as cross-validation did (with the refit, the model of step 1 as well,
    in fold<k>_seed<s>/first/: the one the validation speakers met); `out`: write cv.json and the rest there
    instead of metrics/ (bench/crossval_grid.py)."""
    summary_file, cv_dir = (CV_SUMMARY, CV_DIR) if out is None else (Path(out) / "cv.json", Path(out))
    from pipeline.split import SplitConfig
    from pipeline.train import TrainConfig

    split_cfg = SplitConfig.from_params(params)
    train_cfg = TrainConfig.from_params(params)
    cv = CrossvalConfig.from_params(params)
    def off(note: str) -> dict:
        log.info(note)
        write_json(summary_file, {"cv": {"folds": 0, "note": note}})
        cv_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("folds.csv", "predictions.csv", "val_predictions.csv"):  # an earlier run's: not this one's
            (cv_dir / stale).unlink(missing_ok=True)
        write_text(cv_dir / "report.md", f"# Cross-validation\n\n{note}\n")
        return {}

    if split_cfg.folds < 2:
        return off("cross-validation off: set split.folds to K >= 2 (K = speakers: leave-one-speaker-out)")
    if split_cfg.strategy != "speaker":
        raise ParamsError("split.strategy", f"cross-validation deals speakers to folds: needs strategy speaker, "
                                            f"got {split_cfg.strategy!r} (or set split.folds: 0)")
    if not MANIFEST.exists():
        raise UserError(f"{MANIFEST} not found: run the ingest stage first (dvc repro ingest)")
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    notes: list[str] = []
    if split_cfg.test_speakers or split_cfg.val_speakers:
        notes.append("split.test_speakers / val_speakers are ignored by cross-validation (every speaker is tested)")
    manifest = pd.read_parquet(MANIFEST)
    splits = fold_splits(manifest, split_cfg, notes)
    if not splits:
        return off("cross-validation off: no corpus has two speakers to deal into folds")

    from pipeline import model_card, zoo
    from pipeline.dataset import load_rows

    if cv.workers > 1:  # before this process touches a GPU: it and the workers share the card
        _share_the_gpu()
    ctx = fold_context(params, save_models)  # the rows, folds and settings every training reads
    data, settings, labels = ctx.data, ctx.settings, ctx.labels
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731 (copies follow one split)
    rendered = set(zip(data.meta["corpus"], data.meta["utt_id"]))
    unrendered = sum((c, u) not in rendered for c, u in zip(manifest["corpus"], manifest["utt_id"]))
    if unrendered:  # every original is rendered whatever the balancing; render may quarantine some
        from pipeline.paths import RENDER_QUARANTINE

        notes.append(f"{unrendered} of {len(manifest)} utterances of the manifest are not in the shards (render "
                     f"quarantined them: {RENDER_QUARANTINE}): the folds cover the other "
                     f"{len(manifest) - unrendered}")
    model_card.check_rendered_as_params(params, settings)
    baseline_x = (load_rows(zoo.BASELINE_INPUT, select=originals, needed_by="the crossval baseline").x
                  if cv.baseline else None)
    timing["load shards"] = time.perf_counter() - t0

    import keras

    log.info("crossval: %s, %d folds x %d seeds, %d files, %s backend", train_cfg.model, len(splits),
             len(cv.seeds), len(data), keras.backend.backend())
    fold_rows, pred_rows, val_pred_rows = [], [], []
    t_train = t_base = 0.0
    from tqdm import tqdm

    progress = tqdm(total=len(splits) * (len(cv.seeds) + cv.baseline), desc="crossval", unit="run")
    folds_to_run = []
    for k, split in enumerate(splits):
        if not (_row_splits(data.meta, manifest, split) == "test").any():
            notes.append(f"fold {k}: no test files")
            continue
        folds_to_run.append(k)
    jobs = [(k, seed) for k in folds_to_run for seed in cv.seeds]
    done = {}
    if cv.workers > 1 and len(jobs) > 1:  # folds at once, each process its own trainings (a GPU kept busy)
        for job, result in _in_processes(jobs, params, save_models, cv.workers):
            done[job] = result
            progress.update()
    for k in folds_to_run:
        for seed in cv.seeds:
            if (k, seed) not in done:
                done[k, seed] = fold_seed(ctx, k, seed)
                progress.update()
            result = done[k, seed]
            fold_rows += result["folds"]
            pred_rows += result["predictions"]
            val_pred_rows += result["val_predictions"]
            t_train += result["seconds"]
        if cv.baseline:
            t = time.perf_counter()
            parts = ctx.parts(k)
            test = data.subset(parts["test"])
            fit_rows = parts["train"] | parts["val"]
            for system, mode, per_speaker in ((BASELINE_SYSTEM, "cold", False),
                                              (BASELINE_SYSTEM, "transductive", True)):
                predicted = baseline_scores(baseline_x[fit_rows], data.labels[fit_rows], baseline_x[parts["test"]],
                                            data.speakers[fit_rows], test.speakers, per_speaker)
                rows, frame = _record(BASELINE_SYSTEM, mode, k, 0, test, np.ones(len(test), dtype=bool), predicted,
                                      labels, val_uar=np.nan, epochs=0, seconds=round(time.perf_counter() - t, 1))
                fold_rows.append(rows)
                pred_rows.append(frame)
            t_base += time.perf_counter() - t
            progress.update()
    progress.close()
    timing["train + score (model)"] = t_train
    if cv.baseline:
        timing["baseline (eGeMAPS + SVM)"] = t_base
    if not fold_rows:
        raise UserError("cross-validation produced no test predictions: every fold was empty")
    folds = pd.DataFrame(fold_rows)
    pred = pd.concat(pred_rows, ignore_index=True)
    val_pred = pd.concat(val_pred_rows, ignore_index=True) if val_pred_rows else None
    timing["total"] = time.perf_counter() - t0
    return write_results(folds, pred, val_pred, labels, notes, timing, params, train_cfg.model, summary_file, cv_dir)


def write_results(folds: pd.DataFrame, pred: pd.DataFrame, val_pred: pd.DataFrame | None, labels: list[str],
                  notes: list[str], timing: dict, params: dict, model: str, summary_file: Path, cv_dir: Path) -> dict:
    """Summarise the test predictions and write cv.json, folds.csv, predictions.csv, val_predictions.csv,
    summary.json, the pictures and report.md; print the table. -> the cv.json headline."""
    summary = summarise(pred, folds, labels)
    from pipeline.calibration import cv_calibration

    for system, modes in summary.items():  # the ECE of every system with probabilities (not the SVM baseline)
        for mode, entry in cv_calibration(pred, val_pred, system).items():
            if mode in modes:
                modes[mode]["headline"].update(ece=entry["ece"], ece_uncalibrated=entry["ece_uncalibrated"])
                modes[mode]["calibration"] = {"temperature_median": entry["temperature_median"]}
    headline = headline_metrics(summary, model)
    cv_dir.mkdir(parents=True, exist_ok=True)
    write_json(summary_file, headline)
    write_csv(cv_dir / "folds.csv", folds)
    write_csv(cv_dir / "predictions.csv", pred)
    if val_pred is not None:  # the validation speakers as the model of step 1 met them: to compare choices on
        write_csv(cv_dir / "val_predictions.csv", val_pred)
    else:
        (cv_dir / "val_predictions.csv").unlink(missing_ok=True)  # an earlier run's: not this one's
    write_json(cv_dir / "summary.json", {"systems": summary, "labels": labels, "notes": notes,
                                         "modes": MODE_NOTES,
                                         "timing_seconds": {k: round(v, 1) for k, v in timing.items()}})
    from pipeline.cv_pictures import write_pictures

    for old in ("folds.png", "confusion_matrix.png"):  # the earlier pictures' names: none left stale
        (cv_dir / old).unlink(missing_ok=True)
    pictures = write_pictures(summary, folds, labels, model, cv_dir)
    write_text(cv_dir / "report.md", report_md(summary, folds, params, timing, notes, pictures=pictures, pred=pred,
                                               model=model))
    for note in notes:
        log.warning(note)
    for system, modes in summary.items():
        for mode, entry in modes.items():
            h = entry["headline"]
            lo, hi = h["uar_pooled_ci95"]
            print(f"crossval {system:<22} {mode:<12} UAR {h['uar_mean']:.3f} ± {h['uar_std']:.3f} "
                  f"(pooled {h['uar_pooled']:.3f}, 95 % CI {lo:.3f}-{hi:.3f}), macro-F1 {h['macro_f1_mean']:.3f}"
                  + (f", val UAR {h['val_uar_mean']:.3f}" if "val_uar_mean" in h else "")
                  + (f", ECE {h['ece']:.3f} (uncalibrated {h['ece_uncalibrated']:.3f})" if "ece" in h else ""))
    print("crossval time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()))
    return headline


def merge(runs: list[Path], out: Path, params: dict) -> dict:
    """One cross-validation from runs made apart (other seeds, other machines; `--out` folders of the same folds
    and recipe): their test and validation predictions together, summarised exactly as one run of all their
    seeds is. A (system, mode, fold, seed) in two runs is an error, but for the baseline, which does not depend
    on the seed: the same folds give it the same rows, kept once."""
    folds, preds, vals, notes, timing, labels = [], [], [], [], {}, None
    for run in runs:
        run = Path(run)
        missing = [f for f in ("folds.csv", "predictions.csv", "summary.json") if not (run / f).exists()]
        if missing:
            raise UserError(f"{run}: no {', '.join(missing)}: not the --out folder of a crossval run")
        info = json.loads((run / "summary.json").read_text())
        labels = labels or info["labels"]
        if info["labels"] != labels:
            raise UserError(f"{run}: its classes {info['labels']} differ from {labels}: not the same data")
        folds.append(pd.read_csv(run / "folds.csv"))
        preds.append(pd.read_csv(run / "predictions.csv"))
        if (run / "val_predictions.csv").exists():
            vals.append(pd.read_csv(run / "val_predictions.csv"))
        notes += [n for n in info.get("notes", []) if n not in notes]
        for k, v in info.get("timing_seconds", {}).items():
            timing[k] = timing.get(k, 0.0) + v
    folds, pred = pd.concat(folds, ignore_index=True), pd.concat(preds, ignore_index=True)
    base = folds["system"] == BASELINE_SYSTEM
    key = ["system", "mode", "fold", "seed"]
    twice = folds[~base].duplicated(key)
    if twice.any():
        r = folds[~base][twice].iloc[0]
        raise UserError(f"{r['system']} {r['mode']} fold {r['fold']} seed {r['seed']} is in two of the runs: merge "
                        f"runs of different seeds")
    keep = ~(base & folds.duplicated(key))
    folds = folds[keep].reset_index(drop=True)
    pred = pred[~((pred["system"] == BASELINE_SYSTEM) & pred.duplicated(key + ["name"]))].reset_index(drop=True)
    models = [s for s in dict.fromkeys(folds["system"]) if s != BASELINE_SYSTEM and not s.endswith("(fusion branch)")]
    if len(models) != 1:
        raise UserError(f"the runs hold {len(models)} models ({', '.join(models)}): merge runs of one recipe")
    seeds = sorted(int(s) for s in set(folds.loc[~base[keep].to_numpy(), "seed"]))
    params = dict(params, model=models[0], crossval=dict(params.get("crossval", {}), seeds=seeds))
    notes.append(f"merged from {len(runs)} runs: " + ", ".join(str(r) for r in runs))
    return write_results(folds, pred, pd.concat(vals, ignore_index=True) if vals else None, labels, notes, timing,
                         params, models[0], Path(out) / "cv.json", Path(out))


def headline_metrics(summary: dict, model: str) -> dict:
    """metrics/cv.json: cv.* (the model, transductive: the field's protocol), cv_enrolled10.*, cv_enrolled5.*,
    cv_cold.* (what a user with a few recordings, or one file, gets), then the baseline's (eGeMAPS + SVM:
    standardised on the training speakers = cold, per speaker = transductive)."""
    keep = lambda h: {k: v for k, v in h.items() if not k.startswith("accuracy")}  # noqa: E731
    out = {}
    for mode, key in (("transductive", "cv"), ("enrolled10", "cv_enrolled10"), ("enrolled5", "cv_enrolled5"),
                      ("cold", "cv_cold"), ("enrolled_neutral", "cv_enrolled_neutral")):
        if mode in summary.get(model, {}):
            out[key] = keep(summary[model][mode]["headline"])
    for mode, key in (("transductive", "baseline_spknorm"), ("cold", "baseline")):
        if mode in summary.get("baseline_egemaps_svm", {}):
            h = summary["baseline_egemaps_svm"][mode]["headline"]
            out[key] = {k: v for k, v in h.items() if k.startswith(("uar", "macro_f1"))}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline crossval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-models", metavar="DIR", type=Path,
                        help="also keep every fold's model and card in DIR/fold<k>_seed<s>/ (predict --model takes them)")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="write cv.json and the rest to DIR instead of metrics/ (outside DVC's outputs)")
    parser.add_argument("--merge", metavar="RUN", type=Path, nargs="+",
                        help="train nothing: merge the --out folders of runs made apart (other seeds of the same "
                             "folds and recipe) into one cross-validation, written to --out")
    args = parser.parse_args(argv)
    if args.merge:
        if args.out is None:
            raise UserError("--merge needs --out DIR: where the merged cross-validation goes")
        merge(args.merge, args.out, load())
        return
    run(load(), save_models=args.keep_models, out=args.out)


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
