"""Stage final: the model predict and export use, trained as cross-validation measured it.

    python -m pipeline final      (the `final` stage of dvc.yaml, after crossval)

Cross-validation's figures (metrics/cv.json) describe models trained with a fixed recipe on all speakers but a
test fold (with `crossval.refit`, training + validation speakers). The train stage's model (models/model.keras)
is the quick look at one split: it learnt from the split's training speakers only. The model a user gets is
this one: the same recipe on every labelled speaker and clip, so it has seen more people than any fold model,
never fewer, and nothing in it is chosen on data it is judged on:

  - the schedule's epochs (train.epochs with a fixed schedule; with `plateau`, the median epoch early stopping
    chose over crossval's folds, served at a constant rate: there are no speakers left to stop on);
  - a fusion's weight: models.fusion.weight, or, when that is null (chosen per training), the median of the
    weights crossval's folds chose on their validation speakers;
  - the normalisers' population statistics, the cold rule's gender classifier and the neutral offset are fitted
    on all of them, as each fold's were on its training speakers.

Writes models/final/model.keras and models/final/card.json (the card says what it learnt from,
`trained_on: {speakers, clips}`, its recipe and which cross-validation describes it, with its pooled UAR for each
way of meeting a speaker) and metrics/final.json. bench/final_heldout.py measures the recipe on speakers it never
saw, through predict's own path (docs/recipe.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import UserError
from pipeline.io import write_json
from pipeline.params import load
from pipeline.paths import CV_DIR, CV_SUMMARY, FINAL_CARD, FINAL_MODEL, FINAL_SUMMARY, MANIFEST

log = logging.getLogger("pipeline.final")


def cross_validated(cv_dir: Path | None = CV_DIR) -> bool:
    """Whether cv_dir holds a cross-validation's results (its cv.json says folds >= 2): files of an earlier run
    left beside a cv.json that says it is off are not read."""
    if cv_dir is None:
        return False
    summary = CV_SUMMARY if Path(cv_dir) == CV_DIR else Path(cv_dir) / "cv.json"  # crossval --out DIR: inside
    if not summary.exists():
        return False
    return (json.loads(summary.read_text()).get("cv", {}).get("folds") or 0) >= 2


def recipe(train_cfg, cv_dir: Path | None = CV_DIR) -> tuple[object, dict]:
    """train_cfg as crossval's refit ran it, for all the speakers -> (config, what was taken from where).
    cv_dir None: nothing taken from a cross-validation (bench/final_heldout.py, whose held-out speakers the
    folds' choices were partly made on)."""
    folds_file = Path(cv_dir) / "folds.csv" if cross_validated(cv_dir) else None
    folds = pd.read_csv(folds_file) if folds_file is not None and folds_file.exists() else None
    if folds is not None:
        folds = folds[(folds["system"] == train_cfg.model) & (folds["mode"] == "transductive")]
        folds = folds if len(folds) else None
    info: dict = {"schedule": train_cfg.schedule}
    epochs = train_cfg.epochs
    if train_cfg.schedule == "plateau":  # early stopping needs speakers to stop on: take where the folds stopped
        if folds is not None and "epochs" in folds:
            epochs = int(round(float(np.median(folds["epochs"]))))
            info["epochs_from"] = f"the median over {len(folds)} folds x seeds of {folds_file}"
        else:
            info["epochs_from"] = "train.epochs (no cross-validation to take early stopping's epoch from)"
        info["schedule"] = "constant"
    weight = train_cfg.fusion_weight
    if train_cfg.branches and weight is None:
        if folds is not None and "fusion_weight" in folds and folds["fusion_weight"].notna().any():
            weight = float(np.median(folds["fusion_weight"].dropna()))
            info["fusion_weight_from"] = f"the median over {int(folds['fusion_weight'].notna().sum())} folds x " \
                                         f"seeds of {folds_file} (each chosen on its validation speakers)"
        else:
            weight = 0.5
            info["fusion_weight_from"] = "0.5 (models.fusion.weight null and no cross-validation to take it from)"
    cfg = dataclasses.replace(train_cfg, epochs=epochs, schedule=info["schedule"], fusion_weight=weight)
    info["epochs"] = epochs
    info["seed"] = train_cfg.seed
    if train_cfg.branches:
        info["fusion_weight"] = weight
    return cfg, info


def described_by(cv_summary: Path = CV_SUMMARY) -> dict:
    """Which cross-validation describes the recipe, and its pooled UAR for each way of meeting a speaker."""
    if not Path(cv_summary).exists():
        return {"note": "no cross-validation (metrics/cv.json): the recipe is not measured"}
    cv = json.loads(Path(cv_summary).read_text())
    if not cv.get("cv", {}).get("folds"):
        return {"note": cv.get("cv", {}).get("note", "cross-validation off: the recipe is not measured")}
    ways = {"transductive": "cv", "enrolled10": "cv_enrolled10", "enrolled5": "cv_enrolled5", "cold": "cv_cold",
            "enrolled_neutral": "cv_enrolled_neutral"}
    return {"file": str(cv_summary), "folds": cv["cv"]["folds"], "seeds": cv["cv"]["seeds"],
            "uar_pooled": {mode: cv[key]["uar_pooled"] for mode, key in ways.items() if key in cv},
            "uar_pooled_ci95": {mode: cv[key]["uar_pooled_ci95"] for mode, key in ways.items() if key in cv}}


def calibration_of(model: str, cv_dir: Path = CV_DIR) -> dict | None:
    """The temperatures predict scales the final model's probabilities by (pipeline/calibration.py), fitted on
    every validation prediction crossval made of the recipe (metrics/cv/val_predictions.csv); none without."""
    from pipeline.calibration import temperatures

    val_file = Path(cv_dir) / "val_predictions.csv"
    if not cross_validated(cv_dir) or not val_file.exists():
        return None
    temps = temperatures(pd.read_csv(val_file), model)
    return {"temperature": temps, "fitted_on": str(val_file)} if temps else None


def fit_final(params: dict, exclude_speakers=(), cv_dir: Path = CV_DIR):
    """The final model on every labelled speaker but `exclude_speakers` (bench/final_heldout.py holds some out)
    -> (model, card, info)."""
    from pipeline.train import TrainConfig

    train_cfg = TrainConfig.from_params(params)
    if not MANIFEST.exists():
        raise UserError(f"{MANIFEST} not found: run the ingest stage first (dvc repro ingest)")
    cfg, info = recipe(train_cfg, None if exclude_speakers else cv_dir)
    from pipeline import distribute, model_card, zoo
    from pipeline.backend import has_gpu, quiet_tensorflow
    from pipeline.balancing import balanced
    from pipeline.crossval import _train
    from pipeline.dataset import load_rows, shard_files
    from pipeline.train import class_order

    quiet_tensorflow()
    kinds = zoo.input_kinds(cfg.model)
    cfg.set_precision_policy(has_gpu())
    distribute.configure(cfg.distribution, cfg.batch_size)
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731
    data = balanced(load_rows(kinds, select=originals), params,
                    copies=lambda: load_rows(kinds, select=lambda meta: ~originals(meta)))
    settings = model_card.shard_settings(shard_files())
    model_card.check_rendered_as_params(params, settings)
    rows = ~data.meta["speaker"].isin(set(exclude_speakers)).to_numpy()
    if not rows.any():
        raise UserError("no labelled clips to train the final model on")
    classes = class_order(data.labels[rows])
    log.info("final: %s on %d clips of %d speakers, %d epochs (%s schedule)%s", cfg.model, int(rows.sum()),
             len(set(data.speakers[rows])), cfg.epochs, cfg.schedule,
             f", fusion weight {cfg.fusion_weight}" if cfg.branches else "")
    t = time.perf_counter()
    model, card, _ = _train(cfg, kinds, data, {"train": rows, "val": np.zeros(len(data), dtype=bool)}, classes,
                            settings)
    info["seconds"] = round(time.perf_counter() - t, 1)
    if cfg.branches:
        card["fusion"] = {"image_weight": cfg.fusion_weight, "combine": cfg.fusion_combine}
    from pipeline.segments import SegmentConfig

    card["segments"] = SegmentConfig.from_params(params).to_card()  # predict --segments uses the card's
    return model, card, info


def run(params: dict) -> dict:
    from pipeline.train import save_model

    model, card, info = fit_final(params)
    seconds = info.pop("seconds")
    card["final"] = {"fit": "every labelled speaker and clip, with the recipe cross-validation measured",
                     "recipe": info, "described_by": described_by()}
    calibration = calibration_of(card["model"])
    if calibration:
        card["calibration"] = calibration
    save_model(model, FINAL_MODEL)
    write_json(FINAL_CARD, card)
    summary = {"final": {**card["trained_on"], "epochs": info["epochs"], "train_seconds": seconds}}
    write_json(FINAL_SUMMARY, summary)
    cv = card["final"]["described_by"]
    print(f"final: {card['model']} trained on {card['trained_on']['clips']} clips of {card['trained_on']['speakers']} "
          f"speakers in {seconds:.0f} s -> {FINAL_MODEL}; "
          + (f"described by {cv['file']} ({cv['folds']} folds x {cv['seeds']} seeds): pooled UAR "
             + ", ".join(f"{m} {v:.3f}" for m, v in cv["uar_pooled"].items()) if "file" in cv else cv["note"]))
    return summary


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline final", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
