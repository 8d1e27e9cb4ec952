"""Stage 5, train: the model named by `model`, on the training shards, validated on val.

EarlyStopping (best weights restored), ReduceLROnPlateau, a checkpoint every epoch and resume after
an interruption, DVCLive curves for `dvc plots`. Runs on the GPU when Keras sees one (mixed
precision there by default), else on the CPU. Writes models/model.keras and models/labels.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import TARGET_LABELS
from pipeline.errors import ParamsError, UserError
from pipeline.io import atomic_path, write_json
from pipeline.params import boolean, load, number, section

log = logging.getLogger("pipeline.train")

MODEL = Path("models/model.keras")
LABELS = Path("models/labels.json")
CHECKPOINTS = Path("models/checkpoints")
LIVE_DIR = Path("metrics/train")


@dataclass
class TrainConfig:
    model: str
    hp: dict
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    reduce_lr_patience: int
    class_weights: bool
    seed: int
    mixed_precision: str
    augment: "object"

    @classmethod
    def from_params(cls, params: dict) -> "TrainConfig":
        from pipeline import zoo
        from pipeline.dataset import SpecAugmentConfig

        name = params.get("model")
        zoo.get(name)  # unknown model: ParamsError listing the zoo
        models = section(params, "models")
        hp = zoo.hyperparameters(name, section(models, name))
        t = section(params, "train")
        aug = section(t, "augment")
        mp = t.get("mixed_precision", "auto")
        if mp not in ("auto", True, False):
            raise ParamsError("train.mixed_precision", f"{mp!r} is not one of: auto, true, false")
        batch = number(t, "batch_size", "train", default=None, lo=1, integer=True, allow_none=True)
        lr = number(t, "learning_rate", "train", default=None, lo=0, lo_open=True, allow_none=True)
        return cls(
            model=name, hp=hp,
            epochs=number(t, "epochs", "train", default=30, lo=1, integer=True),
            batch_size=batch or int(hp.get("batch_size", 32)),
            learning_rate=lr or float(hp.get("learning_rate", 1e-3)),
            patience=number(t, "patience", "train", default=8, lo=1, integer=True),
            reduce_lr_patience=number(t, "reduce_lr_patience", "train", default=3, lo=1, integer=True),
            class_weights=boolean(t, "class_weights", "train", False),
            seed=number(t, "seed", "train", default=42, integer=True),
            mixed_precision=mp,
            augment=SpecAugmentConfig(
                time_shift=number(aug, "time_shift", "train.augment", 0.1, lo=0, hi=0.5),
                noise_std=number(aug, "noise_std", "train.augment", 0.02, lo=0, hi=1),
                specaugment=boolean(aug, "specaugment", "train.augment", False),
                freq_masks=number(aug, "freq_masks", "train.augment", 2, lo=0, integer=True),
                time_masks=number(aug, "time_masks", "train.augment", 2, lo=0, integer=True),
                max_mask=number(aug, "max_mask", "train.augment", 0.1, lo=0, hi=0.5)),
        )

    def set_precision_policy(self, gpu: bool) -> None:
        """Mixed float16 when asked, or on a GPU with `auto`; Keras' global policy, so set before building."""
        import keras

        if self.mixed_precision is True or (self.mixed_precision == "auto" and gpu):
            keras.mixed_precision.set_global_policy("mixed_float16")

    def fingerprint(self, data_id: str) -> str:
        """Identity of a run: a checkpoint is resumed only by the same params on the same data."""
        blob = json.dumps({"model": self.model, "hp": self.hp, "batch": self.batch_size, "lr": self.learning_rate,
                           "seed": self.seed, "cw": self.class_weights, "aug": vars(self.augment), "data": data_id},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def class_order(train_labels: np.ndarray) -> list[str]:
    """Classes present in training, in the canonical target order."""
    present = set(train_labels.tolist())
    return [lab for lab in TARGET_LABELS if lab in present]


def feature_norm(x: np.ndarray):
    """(mean, variance) per feature over the training set, for the zoo's Normalization layer."""
    flat = x.reshape(len(x), -1) if x.ndim > 2 else x
    mean = flat.mean(axis=0).reshape(x.shape[1:])
    var = flat.var(axis=0).reshape(x.shape[1:]) + 1e-6
    return mean.astype(np.float32), var.astype(np.float32)


def _data_id(split_files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in split_files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def run(params: dict) -> dict:
    cfg = TrainConfig.from_params(params)  # all params checked before any heavy import
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from pipeline import zoo
    from pipeline.backend import has_gpu
    from pipeline.dataset import load_split, make_sequence, one_hot, shard_files

    keras.utils.set_random_seed(cfg.seed)
    module = zoo.get(cfg.model)
    gpu = has_gpu()
    cfg.set_precision_policy(gpu)
    log.info("model %s (%s input) on %s with the %s backend, batch %d, lr %g", cfg.model, module.INPUT,
             "GPU" if gpu else "CPU", keras.backend.backend(), cfg.batch_size, cfg.learning_rate)

    train = load_split("train", module.INPUT)
    val = load_split("val", module.INPUT) if list(Path("data/processed/shards/val").glob("*.parquet")) else None
    if len(train) == 0:
        raise UserError("the training split is empty")
    classes = class_order(train.labels)
    if val is not None:
        val_mask = np.isin(val.labels, classes)
        if not val_mask.all():
            log.warning("%d val files have labels unseen in training; left out of validation", (~val_mask).sum())
    y_train = one_hot(train.labels, classes)
    log.info("train %d, val %d, classes %s", len(train), 0 if val is None else len(val), ", ".join(classes))

    norm = feature_norm(train.x) if module.INPUT != "image" else None
    data_id = _data_id(shard_files("train") + (shard_files("val") if val is not None else []))
    fingerprint = cfg.fingerprint(data_id)
    hp = dict(cfg.hp, learning_rate=cfg.learning_rate)

    state_file = CHECKPOINTS / "state.json"
    last = CHECKPOINTS / "last.keras"
    initial_epoch = 0
    resumed = False
    if last.exists() and state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") == fingerprint and state.get("epoch", 0) < cfg.epochs and not state.get("done"):
            model = keras.saving.load_model(last)
            initial_epoch = int(state["epoch"])
            resumed = True
            log.info("resuming from %s after epoch %d", last, initial_epoch)
    if not resumed:
        import shutil

        shutil.rmtree(CHECKPOINTS, ignore_errors=True)
        model = zoo.build(cfg.model, train.x.shape[1:], len(classes), hp, norm=norm)
        model.compile(optimizer=zoo.make_optimizer(hp), loss="categorical_crossentropy", metrics=["accuracy"])
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)

    weights = None
    if cfg.class_weights:
        counts = y_train.sum(axis=0)
        per_class = len(y_train) / (len(classes) * np.maximum(counts, 1))
        weights = (y_train * per_class).sum(axis=1).astype(np.float32)
    train_seq = make_sequence(train.x, y_train, cfg.batch_size, shuffle=True, seed=cfg.seed,
                              augment=cfg.augment if module.INPUT == "image" else None, sample_weight=weights)
    val_seq = None
    monitor = "loss"
    if val is not None and len(val):
        val_mask = np.isin(val.labels, classes)
        val_seq = make_sequence(val.x[val_mask], one_hot(val.labels[val_mask], classes), cfg.batch_size,
                                shuffle=False, seed=cfg.seed)
        monitor = "val_loss"
    else:
        log.warning("no validation data: early stopping and learning-rate schedule watch the training loss")

    from dvclive import Live

    live = Live(dir=str(LIVE_DIR), resume=resumed, save_dvc_exp=False, dvcyaml=False)
    live.log_params({"model": cfg.model, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate})
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=cfg.patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5, patience=cfg.reduce_lr_patience,
                                          min_lr=1e-6),
        _checkpoint_callback(keras, last, state_file, fingerprint),
        _live_callback(keras, live),
    ]
    start = time.perf_counter()
    history = model.fit(train_seq, validation_data=val_seq, epochs=cfg.epochs, initial_epoch=initial_epoch,
                        callbacks=callbacks, verbose=2)
    seconds = time.perf_counter() - start
    epochs_run = len(history.history.get("loss", []))
    MODEL.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(MODEL) as tmp:
        final = tmp.with_suffix(".keras")
        model.save(final)
        final.replace(tmp)
    write_json(LABELS, {"labels": classes, "model": cfg.model, "input": module.INPUT,
                        "input_shape": list(train.x.shape[1:])})
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    write_json(state_file, dict(state, done=True, fingerprint=fingerprint))
    best = {k: float(np.min(v)) if "loss" in k else float(np.max(v)) for k, v in history.history.items()
            if k != "learning_rate"}
    live.summary.update({"train_seconds": round(seconds, 1), "epochs": epochs_run + initial_epoch,
                         "images_per_s": round(epochs_run * len(train) / max(seconds, 1e-9), 1)})
    live.end()
    log.info("trained %d epochs in %.0f s; best %s", epochs_run, seconds,
             ", ".join(f"{k} {v:.4f}" for k, v in best.items()))
    return best


def _checkpoint_callback(keras, last: Path, state_file: Path, fingerprint: str):
    class Checkpoint(keras.callbacks.Callback):
        """Save the model and the epoch reached after every epoch, atomically, for resume."""

        def on_epoch_end(self, epoch, logs=None):
            tmp = last.with_name(".last.tmp.keras")
            self.model.save(tmp)
            tmp.replace(last)
            write_json(state_file, {"epoch": epoch + 1, "fingerprint": fingerprint, "done": False})

    return Checkpoint()


def _live_callback(keras, live):
    class LiveCallback(keras.callbacks.Callback):
        """DVCLive logging without dvclive.keras (which imports tf.keras, so TensorFlow only)."""

        def on_epoch_end(self, epoch, logs=None):
            for name, value in (logs or {}).items():
                # learning_rate is the optimiser's, not the training split's: bare, so `dvc exp show` does not
                # prefix it and the param train.learning_rate with file paths for sharing a name
                live.log_metric(name.replace("val_", "val/") if name.startswith("val_")
                                else name if name == "learning_rate" else f"train/{name}", float(value))
            live.next_step()

    return LiveCallback()


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m pipeline train", description=__doc__).parse_args(argv)
    run(load())


if __name__ == "__main__":
    import sys

    from pipeline.__main__ import run_main

    sys.exit(run_main(main))
