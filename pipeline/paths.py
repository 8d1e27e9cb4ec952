"""Where the pipeline reads and writes: every file and folder of a stage or command, defined once.

Relative to the repository root, where DVC runs every stage. dvc.yaml names the same paths for DVC (its
deps and outs; tests/test_dvc_stages.py checks each one is here). Folders that are params (data.raw_dir,
demo.out_dir) are read from params.yaml; their defaults are here.
"""
from __future__ import annotations

from pathlib import Path

# ------------------------------------------------------------------------------------------------- data
RAW_DIR = Path("data/raw")  # default of data.raw_dir: the corpora, in their native layouts
DEMO_DIR = Path("data/demo")  # default of demo.out_dir: the synthetic demo corpus
PROCESSED = Path("data/processed")
INVENTORY = PROCESSED / "raw_inventory.json"  # inventory: what raw_dir holds, links followed
MANIFEST = PROCESSED / "manifest.parquet"  # ingest: one row per usable utterance
QUARANTINE = PROCESSED / "quarantine.csv"  # ingest: files not used, with the reason
SPLIT_FILE = PROCESSED / "split.parquet"  # split: train / val / test (and fold) of every utterance
RENDER_PLAN = PROCESSED / "render_plan.parquet"  # balance: one row per image to render
SHARDS = PROCESSED / "shards"  # render: <corpus>-NNNNN.parquet (pipeline/shards.py)
RENDER_QUARANTINE = PROCESSED / "render_quarantine.csv"  # render: files that failed to render
PNG_DIR = PROCESSED / "png"  # render, features.export_png: the images for people to look at
RENDER_CACHE = Path("data/cache/render")  # render's cache of each clip's work (docs/render-cache.md): no DVC output

# ----------------------------------------------------------------------------------------------- models
MODELS = Path("models")
MODEL = MODELS / "model.keras"  # train
CARD_NAME = "card.json"  # the model card (pipeline/model_card.py), beside a model and in an export
CARD = MODELS / CARD_NAME
FINAL_MODEL = MODELS / "final" / "model.keras"  # final: every labelled speaker, crossval's recipe (predict's default)
FINAL_CARD = FINAL_MODEL.with_name(CARD_NAME)
OLD_CARD_NAME = "labels.json"  # the card's name before; read() tells a user holding only this to re-train
CHECKPOINTS = MODELS / "checkpoints"  # train's own scratch: resume after an interruption (not a DVC output)
EXPORT_DIR = MODELS / "export"  # export: SavedModel, TFLite and the card

# ---------------------------------------------------------------------------------------------- metrics
METRICS = Path("metrics")
INGEST_SUMMARY = METRICS / "ingest.json"
SPLIT_SUMMARY = METRICS / "split.json"
BALANCE_SUMMARY = METRICS / "balance.json"
RENDER_SUMMARY = METRICS / "render.json"
TRAIN_LIVE = METRICS / "train"  # DVCLive's folder
TRAIN_SUMMARY = TRAIN_LIVE / "metrics.json"  # DVCLive's summary: train.*, val.* of the last epoch
TRAIN_CURVES = TRAIN_LIVE / "plots" / "metrics"  # DVCLive's curves (TSV per metric)
TEST_METRICS = METRICS / "metrics.json"  # evaluate: test.* (the single split)
PER_CLASS = METRICS / "per_class.json"  # evaluate: per class, per corpus, top confusions
PREDICTIONS = METRICS / "predictions.csv"  # evaluate: every test prediction (the confusion plot)
CONFUSION_PNG = METRICS / "confusion_matrix.png"
REPORT_MD = METRICS / "report.md"  # evaluate: the experiment report
CURVES_PNG = METRICS / "training_curves.png"  # the report's training curves
EXAMPLES_DIR = METRICS / "examples"  # the report's example spectrogram per emotion
CV_SUMMARY = METRICS / "cv.json"  # crossval: cv.*, baseline.* (the headline)
CV_DIR = METRICS / "cv"  # crossval: per fold, pooled predictions, summary, pictures, report
FINAL_SUMMARY = METRICS / "final.json"  # final: what the shipped model learnt from, its epochs and time
CROSSCORPUS_SUMMARY = METRICS / "crosscorpus.json"  # crosscorpus: one object per cell
CROSSCORPUS_DIR = METRICS / "crosscorpus"  # crosscorpus: heatmap, cells.csv, report


def shipped_model() -> Path:
    """The model predict and export use by default: the final fit (stage final) when there is one, else the train
    stage's single-split model."""
    return FINAL_MODEL if FINAL_MODEL.exists() else MODEL
