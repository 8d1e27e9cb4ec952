"""Stage crossval: the headline result. K speaker folds x S seeds of the model, the field's baseline beside it.

One test split of 2-5 speakers moves UAR by 0.1-0.2 from one split or seed to the next, so the product's
headline is a cross-validation: every speaker is tested once (per seed) by a model that never heard it.

    python -m pipeline crossval      (the `crossval` stage of dvc.yaml)

Speakers are dealt to `split.folds` folds per corpus (pipeline.split.speaker_folds: deterministic from
split.seed and the corpus alone; K = a corpus's speaker count is leave-one-speaker-out); for each fold the
other folds' speakers train, with `split.val_ratio` of them held out for validation as in the train stage.
For each fold and each seed of `crossval.seeds`:
  1. train on the training speakers, score the validation speakers (val UAR: the number to choose settings
     by; the test folds are never used for that);
  2. with `crossval.refit` (default), train again on training + validation speakers with the same settings
     (the schedule's epochs, or the epoch early stopping chose in 1) and score the test speakers; else score
     the test speakers with the model of 1.
The baseline (`crossval.baseline`): openSMILE eGeMAPSv02 functionals + an RBF SVM (C=10), the field's
30-second reference, trained on the same folds' non-test speakers, with features standardised on the
training speakers and, as a second figure, per speaker.

Why a stage and not a queue of `dvc exp run -S split.fold=...` experiments: one process loads and decodes the
shards once and imports Keras once for all K x S trainings, and its result is one metrics file that
`dvc exp show` / `dvc metrics diff` compare between experiments like any other (`-S model=...` re-runs
train, evaluate and crossval only). Shards are split-independent, so nothing is re-rendered for a fold; the
single-fold path (`-S split.fold=k`, also queued) still works for looking at one fold in detail.

Writes metrics/cv.json (cv.* and baseline.* headline: mean +- std over folds x seeds, and pooled over all
folds' test predictions), and metrics/cv/: folds.csv (one row per fold x seed, baseline rows too),
predictions.csv (every test prediction, pooled), summary.json (per corpus, per speaker, per gender,
pooled confusion matrix, timings), folds.png (per-fold UAR with mean and spread) and report.md.
"""
from __future__ import annotations

import argparse
import dataclasses
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
from pipeline.params import boolean, load, section
from pipeline.paths import CV_DIR, CV_SUMMARY, MANIFEST

log = logging.getLogger("pipeline.crossval")

HEADLINE = ("accuracy", "uar", "macro_f1")
BASELINE_C = 10.0  # the reference's RBF SVM (shared/corpora/README: eGeMAPSv02 + RBF SVM C=10)


@dataclass(frozen=True)
class CrossvalConfig:
    seeds: tuple[int, ...]
    refit: bool
    baseline: bool

    @classmethod
    def from_params(cls, params: dict) -> "CrossvalConfig":
        sec = section(params, "crossval", keys=("seeds", "refit", "baseline"))
        seeds = sec.get("seeds", [42])
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            seeds = [seeds]
        if (not isinstance(seeds, list) or not seeds
                or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < 2 ** 32 for s in seeds)):
            raise ParamsError("crossval.seeds", f"must be a non-empty list of integer seeds in 0..2**32-1 "
                                                f"(training seeds), got {seeds!r}")
        return cls(seeds=tuple(seeds), refit=boolean(sec, "refit", "crossval", True),
                   baseline=boolean(sec, "baseline", "crossval", True))


# ------------------------------------------------------------------------------------------------ folds

def fold_splits(manifest: pd.DataFrame, split_cfg, notes: list[str]) -> list[pd.Series]:
    """The train / val / test Series (manifest rows) of every fold."""
    from pipeline.split import fold_splits as every_fold  # split.folds auto: as many as the speakers allow

    return every_fold(manifest, split_cfg, notes)


def _row_splits(meta: pd.DataFrame, manifest: pd.DataFrame, split: pd.Series) -> np.ndarray:
    where = dict(zip(zip(manifest["corpus"], manifest["utt_id"]), split))
    return np.array([where.get(k) for k in zip(meta["corpus"], meta["utt_id"])], dtype=object)


# ------------------------------------------------------------------------------------------------ model

def _train_and_score(train_cfg, input_kind: str, data, parts: dict, classes: list[str], settings: dict):
    """Fit on parts['train'] (validated on parts['val']) -> (model, card, history)."""
    from pipeline.model_card import inputs
    from pipeline.train import build_card, fit

    tr = data.training(parts["train"])
    card = build_card(train_cfg, input_kind, classes, tr, settings)
    x_tr = inputs(tr.x, tr.meta["speaker"].to_numpy(), card)
    va = data.subset(parts["val"]) if parts["val"].any() else None
    x_va = inputs(va.x, va.meta["speaker"].to_numpy(), card) if va is not None else None
    model, history, _, _ = fit(train_cfg, input_kind, x_tr, tr.labels, classes, x_va,
                               va.labels if va is not None else None, verbose=0)
    return model, card, history


def _scores(model, card: dict, part) -> np.ndarray:
    from pipeline.evaluate import predict_inputs
    from pipeline.model_card import inputs

    return predict_inputs(model, inputs(part.x, part.meta["speaker"].to_numpy(), card))


def _epochs_run(train_cfg, history: dict) -> int:
    """Epochs for the refit: all of them with a fixed schedule, else where early stopping found the best."""
    if train_cfg.schedule != "plateau" or "val_loss" not in history:
        return train_cfg.epochs
    return int(np.argmin(history["val_loss"])) + 1


# ------------------------------------------------------------------------------------------------ baseline

def baseline_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, spk_train, spk_test,
                    per_speaker: bool) -> np.ndarray:
    """eGeMAPS + RBF SVM (C=10) predictions: features standardised on the training speakers, or each
    speaker on its own statistics (per_speaker; the test speakers' unlabeled audio included)."""
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from pipeline.dataset import standardise_by_speaker

    if per_speaker:
        x_train = standardise_by_speaker(x_train, spk_train)
        x_test = standardise_by_speaker(x_test, spk_test)
    scaler = StandardScaler().fit(x_train)
    clf = SVC(kernel="rbf", C=BASELINE_C, gamma="scale").fit(scaler.transform(x_train), y_train)
    return clf.predict(scaler.transform(x_test))


# ------------------------------------------------------------------------------------------------ summary

def _metrics(actual, predicted, labels: list[str]) -> dict:
    index = {lab: i for i, lab in enumerate(labels)}
    return evaluate_predictions([index[a] for a in actual], [index[p] for p in predicted], labels)


def summarise(pred: pd.DataFrame, folds: pd.DataFrame, labels: list[str]) -> dict:
    """Mean +- std over the (fold, seed) runs, pooled (all folds' test predictions of a seed together, then the
    mean over seeds), per corpus / speaker / gender (pooled), and the pooled confusion matrix."""
    out: dict = {}
    for system, runs in folds.groupby("system", sort=False):
        mine = pred[pred["system"] == system]
        entry = {"folds": int(runs["fold"].nunique()), "seeds": int(runs["seed"].nunique()), "runs": len(runs)}
        for k in HEADLINE:
            entry[f"{k}_mean"] = round(float(runs[k].mean()), 4)
            entry[f"{k}_std"] = round(float(runs[k].std(ddof=0)), 4)
            pooled = [_metrics(g["actual"], g["predicted"], labels)[k] for _, g in mine.groupby("seed")]
            entry[f"{k}_pooled"] = round(float(np.mean(pooled)), 4)
        if runs["val_uar"].notna().any():
            entry["val_uar_mean"] = round(float(runs["val_uar"].mean()), 4)
        entry["files"] = int(len(mine) / max(1, entry["seeds"]))
        breakdown = {}
        for column in ("corpus", "speaker", "gender"):
            breakdown[column] = {str(key): round(_metrics(g["actual"], g["predicted"], labels)["uar"], 4)
                                 for key, g in mine.groupby(mine[column].fillna("unknown"))}
        pooled_all = _metrics(mine["actual"], mine["predicted"], labels)
        breakdown["confusion_matrix"] = pooled_all["confusion_matrix"]
        breakdown["per_class_recall"] = {lab: round(v["recall"], 4) for lab, v in pooled_all["per_class"].items()}
        out[system] = {"headline": entry, "breakdown": breakdown}
    return out


def plot_folds(folds: pd.DataFrame, path: Path) -> None:
    """Per-fold test UAR of each system (one dot per seed) with its mean line and +-1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(folds["system"]))
    k = int(folds["fold"].max()) + 1
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * k + 3), 3.8), dpi=110)
    for i, system in enumerate(systems):
        runs = folds[folds["system"] == system]
        colour = f"C{i}"
        offset = (i - (len(systems) - 1) / 2) * 0.12
        ax.scatter(runs["fold"] + offset, runs["uar"], s=18, color=colour, label=system, zorder=3)
        mean, std = runs["uar"].mean(), runs["uar"].std(ddof=0)
        ax.axhline(mean, color=colour, lw=1.2)
        ax.axhspan(mean - std, mean + std, color=colour, alpha=0.12)
        ax.text(k - 0.5, mean, f" {mean:.3f} ± {std:.3f}", color=colour, va="center", fontsize=8)
    ax.set_xticks(range(k), [str(f) for f in range(k)])
    ax.set_xlim(-0.6, k + 0.8)
    ax.set_ylim(0, 1)
    ax.set_xlabel("test fold")
    ax.set_ylabel("test UAR")
    ax.set_title("Speaker-fold cross-validation: UAR per fold (mean ± std)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def report_md(summary: dict, folds: pd.DataFrame, params: dict, timing: dict, notes: list[str]) -> str:
    s = params.get("split", {})
    lines = [f"# Cross-validation: {params.get('model')}", "",
             f"{s.get('folds')} speaker folds x seeds {list(CrossvalConfig.from_params(params).seeds)}; "
             f"split seed {s.get('seed')}, val_ratio {s.get('val_ratio')}; "
             f"speaker_norm {params.get('train', {}).get('speaker_norm')}", ""]
    lines += ["| system | UAR mean ± std | UAR pooled | accuracy mean ± std | macro-F1 mean ± std | val UAR | files |",
              "|---|---|---|---|---|---|---|"]
    for system, entry in summary.items():
        h = entry["headline"]
        lines.append(f"| {system} | {h['uar_mean']:.3f} ± {h['uar_std']:.3f} | {h['uar_pooled']:.3f} | "
                     f"{h['accuracy_mean']:.3f} ± {h['accuracy_std']:.3f} | "
                     f"{h['macro_f1_mean']:.3f} ± {h['macro_f1_std']:.3f} | {h.get('val_uar_mean', '')} | "
                     f"{h['files']} |")
    lines += ["", "![per-fold UAR](folds.png)", "", "![pooled confusion matrix](confusion_matrix.png)", "",
              "## Per fold", "",
              "| system | fold | seed | test speakers | files | accuracy | UAR | macro-F1 | val UAR |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in folds.itertuples():
        val = "" if pd.isna(r.val_uar) else f"{r.val_uar:.3f}"
        lines.append(f"| {r.system} | {r.fold} | {r.seed} | {r.test_speakers} | {r.files} | {r.accuracy:.3f} | "
                     f"{r.uar:.3f} | {r.macro_f1:.3f} | {val} |")
    for system, entry in summary.items():
        b = entry["breakdown"]
        lines += ["", f"## {system}: pooled UAR per corpus, gender and speaker", ""]
        for column in ("corpus", "gender", "speaker"):
            lines.append(f"- {column}: " + ", ".join(f"{k} {v:.3f}" for k, v in b[column].items()))
    lines += ["", "## Where the time went", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in timing.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ run

def run(params: dict) -> dict:
    from pipeline.split import SplitConfig
    from pipeline.train import TrainConfig

    split_cfg = SplitConfig.from_params(params)
    train_cfg = TrainConfig.from_params(params)
    cv = CrossvalConfig.from_params(params)
    if split_cfg.folds < 2:
        note = "cross-validation off: set split.folds to K >= 2 (K = speakers: leave-one-speaker-out)"
        log.info(note)
        write_json(CV_SUMMARY, {"cv": {"folds": 0, "note": note}})
        CV_DIR.mkdir(parents=True, exist_ok=True)
        write_text(CV_DIR / "report.md", f"# Cross-validation\n\n{note}\n")
        return {}
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

    from pipeline import model_card, zoo
    from pipeline.backend import quiet_tensorflow
    from pipeline.dataset import load_rows, shard_files

    quiet_tensorflow()
    module = zoo.get(train_cfg.model)
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731 (copies follow one split)
    from pipeline.balancing import balanced  # data.training(mask): a fold's rows to train on, balanced as train's

    data = balanced(load_rows(module.INPUT, select=originals), params,
                    copies=lambda: load_rows(module.INPUT, select=lambda meta: ~originals(meta)))
    rendered = set(zip(data.meta["corpus"], data.meta["utt_id"]))
    unrendered = sum((c, u) not in rendered for c, u in zip(manifest["corpus"], manifest["utt_id"]))
    if unrendered:  # every original is rendered whatever the balancing; render may quarantine some
        from pipeline.paths import RENDER_QUARANTINE

        notes.append(f"{unrendered} of {len(manifest)} utterances of the manifest are not in the shards (render "
                     f"quarantined them: {RENDER_QUARANTINE}): the folds cover the other "
                     f"{len(manifest) - unrendered}")
    settings = model_card.shard_settings(shard_files())
    baseline_x = (load_rows(zoo.BASELINE_INPUT, select=originals, needed_by="the crossval baseline").x
                  if cv.baseline else None)
    timing["load shards"] = time.perf_counter() - t0
    labels = [lab for lab in TARGET_LABELS if lab in set(data.labels)]

    import keras

    log.info("crossval: %s, %d folds x %d seeds, %d files, %s backend", train_cfg.model, split_cfg.folds,
             len(cv.seeds), len(data), keras.backend.backend())
    fold_rows, pred_rows = [], []
    t_train = t_base = 0.0
    from tqdm import tqdm

    progress = tqdm(total=split_cfg.folds * (len(cv.seeds) + cv.baseline), desc="crossval", unit="run")
    for k, split in enumerate(splits):
        where = _row_splits(data.meta, manifest, split)
        parts = {name: where == name for name in ("train", "val", "test")}
        test = data.subset(parts["test"])
        if len(test) == 0:
            notes.append(f"fold {k}: no test files")
            continue
        test_speakers = " ".join(sorted(set(test.meta["speaker"])))

        def record(system: str, seed: int, predicted: np.ndarray, **extra) -> None:
            """One (system, fold, seed) row of folds.csv and its test predictions."""
            m = _metrics(test.labels, predicted, labels)
            fold_rows.append({"system": system, "fold": k, "seed": seed, "test_speakers": test_speakers,
                              "files": len(test), **{h: round(m[h], 4) for h in HEADLINE}, **extra})
            pred_rows.append(pd.DataFrame({"system": system, "fold": k, "seed": seed, "corpus": test.meta["corpus"],
                                           "speaker": test.meta["speaker"], "gender": test.meta["gender"],
                                           "name": test.meta["name"], "actual": test.labels,
                                           "predicted": predicted}))
        for seed in cv.seeds:
            classes = [lab for lab in labels if lab in set(data.labels[parts["train"]])]
            t = time.perf_counter()
            cfg = dataclasses.replace(train_cfg, seed=seed)
            model, card, history = _train_and_score(cfg, module.INPUT, data, parts, classes, settings)
            val_uar = np.nan
            if parts["val"].any():
                va = data.subset(parts["val"])
                val_pred = np.asarray(classes)[_scores(model, card, va).argmax(axis=1)]
                val_uar = _metrics(va.labels, val_pred, labels)["uar"]
            epochs = _epochs_run(cfg, history)
            if cv.refit and parts["val"].any():
                refit_parts = {"train": parts["train"] | parts["val"], "val": np.zeros(len(data), dtype=bool)}
                # a class only the validation speakers have becomes a training class of the refit
                classes = [lab for lab in labels if lab in set(data.labels[refit_parts["train"]])]
                refit = dataclasses.replace(cfg, epochs=epochs,
                                            schedule="cosine" if cfg.schedule == "cosine" else "constant")
                model, card, _ = _train_and_score(refit, module.INPUT, data, refit_parts, classes, settings)
            predicted = np.asarray(classes)[_scores(model, card, test).argmax(axis=1)]
            t_train += time.perf_counter() - t
            record(train_cfg.model, seed, predicted, val_uar=round(val_uar, 4) if not np.isnan(val_uar) else np.nan,
                   epochs=epochs, seconds=round(time.perf_counter() - t, 1))
            keras.backend.clear_session()
            progress.update()
        if cv.baseline:
            t = time.perf_counter()
            fit_rows = parts["train"] | parts["val"]
            for system, per_speaker in (("baseline_egemaps_svm", False), ("baseline_egemaps_svm_spknorm", True)):
                predicted = baseline_scores(baseline_x[fit_rows], data.labels[fit_rows], baseline_x[parts["test"]],
                                            data.meta["speaker"].to_numpy()[fit_rows], test.meta["speaker"].to_numpy(),
                                            per_speaker)
                record(system, 0, predicted, val_uar=np.nan, epochs=0, seconds=round(time.perf_counter() - t, 1))
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
    summary = summarise(pred, folds, labels)
    timing["total"] = time.perf_counter() - t0
    # cv.* then baseline.* columns in `dvc exp show`; the model's name is in the params columns already
    headline = {"cv": summary[train_cfg.model]["headline"]}
    for key, system in (("baseline", "baseline_egemaps_svm"), ("baseline_spknorm", "baseline_egemaps_svm_spknorm")):
        if system in summary:
            headline[key] = {k: v for k, v in summary[system]["headline"].items() if k.startswith(HEADLINE)}
    CV_DIR.mkdir(parents=True, exist_ok=True)
    write_json(CV_SUMMARY, headline)
    write_csv(CV_DIR / "folds.csv", folds)
    write_csv(CV_DIR / "predictions.csv", pred)
    write_json(CV_DIR / "summary.json", {"systems": summary, "labels": labels, "notes": notes,
                                         "timing_seconds": {k: round(v, 1) for k, v in timing.items()}})
    plot_folds(folds, CV_DIR / "folds.png")
    from pipeline.evaluate import plot_confusion

    mine = summary[train_cfg.model]
    plot_confusion(mine["breakdown"]["confusion_matrix"], labels, CV_DIR / "confusion_matrix.png",
                   f"{train_cfg.model}: pooled over {mine['headline']['folds']} folds, "
                   f"UAR {mine['headline']['uar_pooled']:.3f}")
    write_text(CV_DIR / "report.md", report_md(summary, folds, params, timing, notes))
    for note in notes:
        log.warning(note)
    for system, entry in summary.items():
        h = entry["headline"]
        print(f"crossval {system:<30} UAR {h['uar_mean']:.3f} ± {h['uar_std']:.3f} (pooled {h['uar_pooled']:.3f}), "
              f"accuracy {h['accuracy_mean']:.3f} ± {h['accuracy_std']:.3f}, macro-F1 {h['macro_f1_mean']:.3f}"
              + (f", val UAR {h['val_uar_mean']:.3f}" if "val_uar_mean" in h else ""))
    print("crossval time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()))
    return headline


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline crossval", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
