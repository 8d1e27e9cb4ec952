"""Stage 5, train: the model named by `model`, on the training shards, validated on val.

EarlyStopping (best weights restored), ReduceLROnPlateau, a checkpoint every epoch and resume after
an interruption, DVCLive curves for `dvc plots`. Runs on the GPU when Keras sees one (mixed
precision there by default), else on the CPU. Writes models/model.keras and its card, models/card.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import TARGET_LABELS
from pipeline.errors import ParamsError, UserError
from pipeline.io import atomic_path, write_json
from pipeline.params import boolean, choice, load, number, section
from pipeline.paths import CARD, CHECKPOINTS, MODEL, SPLIT_FILE, TRAIN_LIVE
from pipeline.zoo.fusion import DEFAULTS as FUSION_DEFAULTS

log = logging.getLogger("pipeline.train")



SCHEDULES = ("cosine", "plateau", "constant")
COLD_OFFSETS = ("own", "shuffled")  # train.cold_offsets


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
    schedule: str = "plateau"
    normalisation: str = "none"  # speaker | population | utterance | none (pipeline/normalisation.py)
    normalisation_scale: str = "speaker"  # a speaker's std divides its rows, or the population's
    normalisation_shrinkage: bool = False  # under min_clips clips, a speaker's mean shrunk towards the population's
    normalisation_population: str = "clips"  # population statistics over every clip | each corpus and speaker once
    normalisation_cold: "str | dict" = "population"  # a file with no speaker: population | clip | gender |
                                                      # gender_clip, for every input or {input kind: policy}
    cold_share: float = 0.0  # share of training rows served each epoch as a stranger's file is (the population's)
    cold_offsets: str = "own"  # those rows moved by their own speaker's offset from the stranger's centre, or by a
                               # random training row's (`shuffled`: someone else's voice, redrawn every batch)
    prior_correction: bool = False  # the trained model's probabilities divided by the training class frequencies
    distribution: str = "auto"  # auto | none | data_parallel (pipeline/distribute.py)
    branches: dict = field(default_factory=dict)  # fusion: {input kind: TrainConfig of that branch's model}
    fusion_weight: float | None = None  # fusion: the image branch's weight; None = chosen on validation
    fusion_combine: str = FUSION_DEFAULTS["combine"]  # fusion: how the branches combine (zoo/fusion.py)

    @classmethod
    def from_params(cls, params: dict) -> "TrainConfig":
        from pipeline import distribute, zoo
        from pipeline.dataset import SpecAugmentConfig
        from pipeline.normalisation import MODES, POPULATIONS, SCALES

        name = params.get("model")
        zoo.get(name)  # unknown model: ParamsError listing the zoo
        models = section(params, "models", keys=zoo.MODEL_NAMES, what="model")
        for other in models:  # every model's hyper-parameters are checked, not only the chosen one's
            zoo.hyperparameters(other, section(models, other, prefix="models"))
        hp = zoo.hyperparameters(name, section(models, name, prefix="models"))
        branches = {}
        for kind, branch in zoo.branches(name, hp).items():  # fusion: each branch trains as its own model
            branches[kind] = cls.from_params(dict(params, model=branch))
        t = section(params, "train", keys=("epochs", "batch_size", "learning_rate", "schedule", "normalisation",
                                           "normalisation_scale", "normalisation_shrinkage",
                                           "normalisation_population", "normalisation_cold", "cold_share", "cold_offsets",
                                           "patience",
                                           "reduce_lr_patience", "class_weights", "prior_correction", "seed",
                                           "mixed_precision", "distribution", "augment"))
        aug = section(t, "augment", prefix="train", keys=("time_shift", "noise_std", "specaugment", "freq_masks",
                                                          "time_masks", "max_mask", "mixup"))
        mp = t.get("mixed_precision", "auto")
        if mp not in ("auto", True, False):
            raise ParamsError("train.mixed_precision", f"{mp!r} is not one of: auto, true, false")
        batch = number(t, "batch_size", "train", default=None, lo=1, integer=True, allow_none=True)
        lr = number(t, "learning_rate", "train", default=None, lo=0, lo_open=True, allow_none=True)
        return cls(
            model=name, hp=hp,
            epochs=number(t, "epochs", "train", default=40, lo=1, integer=True),
            batch_size=batch or int(hp.get("batch_size", 32)),
            learning_rate=lr or float(hp.get("learning_rate", 1e-3)),
            patience=number(t, "patience", "train", default=6, lo=1, integer=True),
            reduce_lr_patience=number(t, "reduce_lr_patience", "train", default=3, lo=1, integer=True),
            class_weights=boolean(t, "class_weights", "train", False),
            prior_correction=boolean(t, "prior_correction", "train", False),
            seed=number(t, "seed", "train", default=42, lo=0, hi=2 ** 32 - 1, integer=True),
            mixed_precision=mp,
            augment=SpecAugmentConfig(
                time_shift=number(aug, "time_shift", "train.augment", 0.1, lo=0, hi=0.5),
                noise_std=number(aug, "noise_std", "train.augment", 0.02, lo=0, hi=1),
                specaugment=boolean(aug, "specaugment", "train.augment", False),
                freq_masks=number(aug, "freq_masks", "train.augment", 2, lo=0, integer=True),
                time_masks=number(aug, "time_masks", "train.augment", 2, lo=0, integer=True),
                max_mask=number(aug, "max_mask", "train.augment", 0.1, lo=0, hi=0.5),
                mixup=float(number(aug, "mixup", "train.augment", 0.0, lo=0))),
            schedule=choice(t, "schedule", "train", SCHEDULES, default="plateau"),
            normalisation=choice(t, "normalisation", "train", MODES, default="none"),
            normalisation_scale=choice(t, "normalisation_scale", "train", SCALES, default="speaker"),
            normalisation_shrinkage=boolean(t, "normalisation_shrinkage", "train", False),
            normalisation_population=choice(t, "normalisation_population", "train", POPULATIONS, default="clips"),
            normalisation_cold=cold_policy(t.get("normalisation_cold", "population")),
            cold_share=float(number(t, "cold_share", "train", 0.0, lo=0, hi=1)),
            cold_offsets=choice(t, "cold_offsets", "train", COLD_OFFSETS, default="own"),
            distribution=distribute.check(t),
            branches=branches,
            fusion_weight=hp.get("weight"),
            fusion_combine=hp.get("combine", FUSION_DEFAULTS["combine"]),
        )

    def set_precision_policy(self, gpu: bool) -> None:
        """Mixed float16 when asked, or on a GPU with `auto`; Keras' global policy, so set before building."""
        import keras

        if self.mixed_precision is True or (self.mixed_precision == "auto" and gpu):
            keras.mixed_precision.set_global_policy("mixed_float16")

    def fingerprint(self, data_id: str) -> str:
        """Identity of a run: a checkpoint is resumed only by the same params on the same data."""
        blob = json.dumps({"model": self.model, "hp": self.hp, "batch": self.batch_size, "lr": self.learning_rate,
                           "seed": self.seed, "cw": self.class_weights, "aug": vars(self.augment), "data": data_id,
                           "epochs": self.epochs, "schedule": self.schedule, "norm": self.normalisation,
                           "norm_scale": self.normalisation_scale, "norm_shrink": self.normalisation_shrinkage,
                           "norm_population": self.normalisation_population, "cold_share": self.cold_share,
                           "cold_offsets": self.cold_offsets,
                           "norm_cold": self.normalisation_cold,
                           "fusion_weight": self.fusion_weight},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cold_policy(value) -> "str | dict":
    """train.normalisation_cold: one policy for every input, or {input kind: policy} (a kind left out: the
    population's), each one of normalisation.COLD."""
    from pipeline import zoo
    from pipeline.normalisation import COLD

    if isinstance(value, str) and value in COLD:
        return value
    if isinstance(value, dict) and value:
        for kind, policy in value.items():
            if kind not in zoo.INPUT_KINDS:
                raise ParamsError(f"train.normalisation_cold.{kind}", f"not an input kind; one of: "
                                                                      f"{', '.join(zoo.INPUT_KINDS)}")
            if policy not in COLD:
                raise ParamsError(f"train.normalisation_cold.{kind}", f"{policy!r} is not one of: {', '.join(COLD)}")
        return dict(value)
    raise ParamsError("train.normalisation_cold", f"{value!r} is not one of: {', '.join(COLD)}, or a mapping of "
                                                  f"input kind to one of them (image: clip, compare: gender)")


def cold_of(policy: "str | dict", kind: str) -> str:
    """The cold policy of one input."""
    return policy if isinstance(policy, str) else policy.get(kind, "population")


def class_order(train_labels: np.ndarray) -> list[str]:
    """Classes present in training, in the canonical target order."""
    present = set(train_labels.tolist())
    return [lab for lab in TARGET_LABELS if lab in present]


def class_prior(labels: np.ndarray, classes: list[str], class_weights: bool = False) -> np.ndarray:
    """The class frequencies a model learns from its training rows, which train.prior_correction divides out:
    each class's share of the rows, or equal shares when class weights already even them out (a class without
    rows counts as one row, so nothing is divided by zero)."""
    if class_weights:
        return np.full(len(classes), 1.0 / len(classes))
    counts = np.array([np.sum(np.asarray(labels) == c) for c in classes], dtype=np.float64)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()


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


def build_card(cfg: TrainConfig, kinds: tuple, classes: list[str], train, settings: dict) -> dict:
    """The model card: for each input, its shape and its speaker normaliser fitted on the training rows."""
    from pipeline import model_card

    inputs = {}
    for kind in kinds:
        norm = model_card.normaliser(kind, cfg.normalisation, settings, cfg.normalisation_scale,
                                     cfg.normalisation_shrinkage, cfg.normalisation_population,
                                     cold_of(cfg.normalisation_cold, kind))
        if norm.mode != cfg.normalisation:
            log.warning("train.normalisation %s does not apply to the papers' image (min-max scaled per image): "
                        "model %s reads it as it is", cfg.normalisation, cfg.model)
        raw = train.inputs[kind]
        if norm.mode != "none":
            meta = getattr(train, "meta", None)  # cold `gender` learns from the training speakers' recorded gender
            genders = None if meta is None or "gender" not in meta else meta["gender"].to_numpy(dtype=object)
            norm.fit(model_card.values(kind, raw, settings.get("image_scale")), speakers=train.speakers,
                     genders=genders, labels=getattr(train, "labels", None))
            if norm.cold in ("gender", "gender_clip") and norm.group_model is None:
                log.warning("train.normalisation_cold %s: the training speakers' genders are unknown, or a gender "
                            "has under 2 speakers; a stranger's file gets the whole population's statistics", norm.cold)
            if norm.shrinkage and norm.mode == "speaker" and norm.prior_clips is None:
                log.warning("train.normalisation_shrinkage: fewer than 3 training speakers with 2 or more clips, "
                            "too few to learn how far to trust a few clips; a speaker with under %d clips gets the "
                            "population's statistics", norm.min_clips)
        inputs[kind] = (raw.shape[1:], norm)
    card = model_card.make(cfg.model, classes, inputs, settings)
    meta = getattr(train, "meta", None)
    if meta is not None and {"corpus", "speaker"} <= set(meta):
        card["trained_on"] = model_card.trained_on(meta)
    # how much of training met a stranger's statistics, with whose offsets (its own speaker's, or shuffled)
    card["cold_training"] = {"share": cfg.cold_share, "offsets": getattr(cfg, "cold_offsets", "own")}
    if cfg.prior_correction:  # what the model's probabilities were divided by (fit): the card says so
        prior = class_prior(train.labels, classes, cfg.class_weights)
        card["prior_correction"] = {"training_prior": {c: round(float(v), 6) for c, v in zip(classes, prior)}}
    return card


def training_inputs(cfg: TrainConfig, raw: dict, card: dict, speakers) -> tuple[dict, dict | None]:
    """The training rows as the model learns from them: each speaker normalised on its own statistics, and,
    with train.cold_share, the same rows normalised as a stranger's file is served (the population's statistics,
    predict's cold path), of which fit serves that share each epoch in place of the speaker-normalised row."""
    from pipeline.model_card import model_inputs

    x, _ = model_inputs(raw, card, speakers=speakers)
    if cfg.cold_share <= 0 or all(spec["normalisation"]["mode"] in ("none", "utterance")
                                  for spec in card["inputs"].values()):
        return x, None
    return x, model_inputs(raw, card, speakers=None)[0]


def _cold_rows(cfg: TrainConfig, x: np.ndarray, x_cold: dict | None, kind: str) -> dict:
    """make_sequence's arguments for train.cold_share: the rows as a stranger's (`own`), or the offsets that
    make them so, to be dealt out at random (`shuffled`)."""
    from pipeline.dataset import cold_offsets

    if x_cold is None:
        return {}
    if cfg.cold_offsets == "shuffled":
        return {"offsets": cold_offsets(x, x_cold[kind])}
    return {"alternative": x_cold[kind]}


def fit(cfg: TrainConfig, x_train: dict, train_labels: np.ndarray, classes: list[str],
        x_val: dict | None = None, val_labels: np.ndarray | None = None, *, checkpoints: Path | None = None,
        data_id: str = "", live=None, verbose: int = 2, extra_callbacks: tuple = (), val_modes: dict | None = None,
        x_cold: dict | None = None):
    """Build, compile and fit the model of `cfg` on prepared inputs ({input kind: array}, as
    model_card.model_inputs makes them); returns (model, history dict, seconds, the epoch it started from).
    val_modes: the validation rows made each way a user meets the model (model_card.inputs_by_mode), on which a
    fusion chooses its weight. x_cold: the training rows normalised as a stranger's (training_inputs), served
    for train.cold_share of the rows each epoch.

    schedule `plateau`: ReduceLROnPlateau + EarlyStopping on the validation loss (best weights restored).
    schedule `cosine`: the learning rate decays to 0 over all epochs and every epoch runs; validation is
    only watched, so a small validation set (one or two speakers) cannot stop training on noise.
    schedule `constant`: the learning rate stays, every epoch runs (crossval's refit of a plateau model).
    With `checkpoints`, the model and the callbacks' state are saved every epoch and an interrupted run with
    the same fingerprint resumes where it stopped (early stopping's best weights and patience, the
    learning-rate schedule's counters and the data order included).
    """
    import keras

    from pipeline import distribute, zoo
    from pipeline.dataset import make_sequence, one_hot
    from pipeline.model_card import as_model_input

    if cfg.branches:
        return _fit_fusion(cfg, x_train, train_labels, classes, x_val, val_labels, checkpoints=checkpoints,
                           data_id=data_id, live=live, verbose=verbose, val_modes=val_modes, x_cold=x_cold)
    keras.utils.set_random_seed(cfg.seed)
    y_train = one_hot(train_labels, classes)
    hp = dict(cfg.hp, learning_rate=cfg.learning_rate)
    n_train = len(next(iter(x_train.values())))
    steps = int(np.ceil(n_train / cfg.batch_size))
    has_val = x_val is not None and len(next(iter(x_val.values()))) > 0
    monitor = "val_loss" if has_val else "loss"
    if not has_val and cfg.schedule == "plateau":
        log.warning("no validation data: early stopping and learning-rate schedule watch the training loss")

    fingerprint = cfg.fingerprint(data_id)
    model, state, initial_epoch = None, {}, 0
    if checkpoints is not None:
        model, state = _resume(checkpoints, fingerprint, cfg.epochs)
        initial_epoch = int(state.get("epoch", 0))
        if model is None:
            shutil.rmtree(checkpoints, ignore_errors=True)
        checkpoints.mkdir(parents=True, exist_ok=True)
    (kind, x_only), = x_train.items()  # one input: several are a fusion of single-input branches
    if model is None:
        norm = feature_norm(x_only) if kind != "image" else None
        model = zoo.build(cfg.model, x_only.shape[1:], len(classes), hp, norm=norm)
        decay = steps * cfg.epochs if cfg.schedule == "cosine" else None
        model.compile(optimizer=zoo.make_optimizer(hp, decay_steps=decay),
                      loss="categorical_crossentropy", metrics=["accuracy"])

    weights = None
    if cfg.class_weights:
        counts = y_train.sum(axis=0)
        per_class = len(y_train) / (len(classes) * np.maximum(counts, 1))
        weights = (y_train * per_class).sum(axis=1).astype(np.float32)
    train_seq = make_sequence(x_only, y_train, cfg.batch_size, shuffle=True, seed=cfg.seed,
                              augment=_augment_for(cfg, kind), sample_weight=weights, initial_epoch=initial_epoch,
                              alternative_share=cfg.cold_share, **_cold_rows(cfg, x_only, x_cold, kind))
    train_seq = distribute.divisible(train_seq, n_train, cfg.batch_size)  # [distribute] last batch
    val_seq = None
    # the validation loss each epoch: for early stopping, or for someone watching (dvclive's curves, printed
    # progress); crossval's trainings on a fixed schedule score their validation speakers once, afterwards
    if has_val and (cfg.schedule == "plateau" or live is not None or verbose > 0):
        known = np.isin(val_labels, classes)
        if not known.all():
            log.warning("%d val files have labels unseen in training; left out of validation", (~known).sum())
        val_seq = make_sequence(as_model_input(x_val)[known], one_hot(val_labels[known], classes),
                                cfg.batch_size, shuffle=False, seed=cfg.seed)
        val_seq = distribute.divisible(val_seq, int(known.sum()), cfg.batch_size)  # [distribute] last batch

    callbacks = []
    if cfg.schedule == "plateau":
        callbacks += [_resumable(keras.callbacks.EarlyStopping, state.get("early_stopping"), checkpoints,
                                 monitor=monitor, patience=cfg.patience, restore_best_weights=True),
                      _resumable(keras.callbacks.ReduceLROnPlateau, state.get("reduce_lr"), checkpoints,
                                 monitor=monitor, factor=0.5, patience=cfg.reduce_lr_patience, min_lr=1e-6)]
    if checkpoints is not None:
        callbacks.append(_checkpoint_callback(keras, checkpoints, fingerprint, callbacks[:]))
    if live is not None:
        callbacks.append(_live_callback(keras, live))
    callbacks += list(extra_callbacks)
    start = time.perf_counter()
    history = model.fit(train_seq, validation_data=val_seq, epochs=cfg.epochs, initial_epoch=initial_epoch,
                        callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    if checkpoints is not None:
        state_file = checkpoints / "state.json"
        saved = json.loads(state_file.read_text()) if state_file.exists() else {}
        write_json(state_file, dict(saved, done=True, fingerprint=fingerprint))
    if cfg.prior_correction:  # after training: the loss stays the plain cross-entropy (blocks.PriorCorrection)
        from pipeline.zoo.blocks import divide_by_prior

        model = divide_by_prior(model, class_prior(train_labels, classes, cfg.class_weights))
    return model, dict(history.history), seconds, initial_epoch


def _augment_for(cfg: TrainConfig, kind: str):
    """The on-the-fly augmentation of an input: train.augment (the spectrogram recipe's time shift, masks and
    mixup) for images; none for utterance features (mixup made the functionals worse on validation speakers:
    docs/recipe.md)."""
    return cfg.augment if kind == "image" else None


FUSION_WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)  # the image branch's share, searched on validation


def fusion_weight(val_probs: dict, val_labels: dict, classes: list[str], image_kind: str = "image",
                  how: str = FUSION_DEFAULTS["combine"]) -> tuple[float, dict]:
    """The image branch's weight w in the fusion `how` (pipeline.zoo.fusion.combine) that maximises the validation
    speakers' UAR averaged over the ways a user meets the model (val_probs: {mode: {kind: probabilities}}, val_labels:
    {mode: labels}), so one weight serves a file of a stranger as well as an enrolled speaker; ties: the
    weight nearest 0.5, an even mix. Returns it and the mean UAR of every weight tried."""
    from pipeline.metrics import evaluate_predictions
    from pipeline.zoo.fusion import combine

    index = {c: i for i, c in enumerate(classes)}
    scores = {}
    for w in FUSION_WEIGHTS:
        uars = []
        for mode, probs in val_probs.items():
            labels = np.asarray(val_labels[mode])
            known = np.array([lab in index for lab in labels])
            truth = np.array([index[lab] for lab in labels[known]])
            (other,) = [k for k in probs if k != image_kind]
            fused = combine(w, probs[image_kind][known], probs[other][known], how)
            uars.append(evaluate_predictions(truth, fused.argmax(axis=1), classes)["uar"])
        scores[float(w)] = float(np.mean(uars))
    best = max(scores, key=lambda w: (round(scores[w], 6), -abs(w - 0.5)))
    return best, scores


def _fit_fusion(cfg: TrainConfig, x_train: dict, train_labels, classes, x_val, val_labels, *, checkpoints,
                data_id, live, verbose, val_modes=None, x_cold=None):
    """Late fusion: each branch (the image model, the feature model) trained on its own input with its own
    settings, then the probabilities averaged with the image branch's weight chosen on the validation speakers,
    over the ways they can be met (val_modes; else as x_val is), or cfg.fusion_weight when fixed (crossval's
    refit). One Keras model of two inputs comes out."""
    from pipeline.zoo import fusion

    models, histories, seconds = {}, {}, 0.0
    for kind, branch_cfg in cfg.branches.items():
        model, history, secs, _ = fit(replace(branch_cfg, seed=cfg.seed, epochs=cfg.epochs), {kind: x_train[kind]},
                                      train_labels, classes, None if x_val is None else {kind: x_val[kind]},
                                      val_labels, checkpoints=None if checkpoints is None else checkpoints / kind,
                                      data_id=data_id, live=live if kind == "image" else None, verbose=verbose,
                                      x_cold=None if x_cold is None else {kind: x_cold[kind]})
        models[kind], seconds = model, seconds + secs
        histories.update({f"{kind}/{k}": v for k, v in history.items()})
    weight, scores = cfg.fusion_weight, {}
    has_val = x_val is not None and len(next(iter(x_val.values()))) > 0
    if weight is None and has_val:
        from pipeline.runtime import predict_inputs

        val_modes = val_modes or {"transductive": (np.ones(len(val_labels), dtype=bool), x_val)}
        probs = {mode: {kind: predict_inputs(m, x[kind]) for kind, m in models.items()}
                 for mode, (_, x) in val_modes.items()}
        labels = {mode: np.asarray(val_labels)[mask] for mode, (mask, _) in val_modes.items()}
        weight, scores = fusion_weight(probs, labels, classes, how=cfg.fusion_combine)
        log.info("fusion: image weight %.2f chosen on %d validation files met %d ways (mean val UAR %.3f; image "
                 "alone %.3f, features alone %.3f)", weight, len(val_labels), len(val_modes), scores[weight],
                 scores[1.0], scores[0.0])
    elif weight is None:
        weight = 0.5
        log.warning("fusion: no validation speakers to choose the branches' weights on: an even mix (0.5)")
    fused = fusion.assemble(models, float(weight), cfg.fusion_combine)
    histories.update(fusion_weight=[float(weight)], fusion_val_uar={str(w): v for w, v in scores.items()})
    return fused, histories, seconds, 0


def run(params: dict) -> dict:
    cfg = TrainConfig.from_params(params)  # all params checked before any heavy import
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow()
    import keras

    from pipeline import model_card, zoo
    from pipeline.backend import has_gpu
    from pipeline.dataset import load_split, shard_files

    kinds = zoo.input_kinds(cfg.model)
    gpu = has_gpu()
    cfg.set_precision_policy(gpu)
    from pipeline import distribute  # [distribute] several devices: DataParallel on JAX, before building

    distribute.configure(cfg.distribution, cfg.batch_size)
    log.info("model %s (%s input) on %s with the %s backend, batch %d, lr %g, %s schedule, %s normalisation",
             cfg.model, " + ".join(kinds), "GPU" if gpu else "CPU", keras.backend.backend(), cfg.batch_size,
             cfg.learning_rate, cfg.schedule, cfg.normalisation)

    shards = shard_files()
    settings = model_card.shard_settings(shards)
    from pipeline.balancing import BalanceConfig, select_training

    train = select_training(load_split("train", kinds), BalanceConfig.from_params(params))  # balance.*
    val = load_split("val", kinds)
    if len(train) == 0:
        raise UserError("the training split is empty")
    classes = class_order(train.labels)
    log.info("train %d, val %d, classes %s", len(train), len(val), ", ".join(classes))
    card = build_card(cfg, kinds, classes, train, settings)
    from pipeline.segments import SegmentConfig

    card["segments"] = SegmentConfig.from_params(params).to_card()  # predict --segments uses the card's
    x_train, x_cold = training_inputs(cfg, train.inputs, card, train.speakers)
    x_val = model_card.model_inputs(val.inputs, card, speakers=val.speakers)[0] if len(val) else None

    from dvclive import Live

    data_id = _data_id(shards + [SPLIT_FILE])
    resume_at = _resumable_epoch(CHECKPOINTS, cfg.fingerprint(data_id), cfg.epochs)
    live = Live(dir=str(TRAIN_LIVE), resume=bool(resume_at), save_dvc_exp=False, dvcyaml=False)
    if resume_at:  # DVC removed the curves of the interrupted run with the stage's outputs: go on at its epoch
        live.step = resume_at
    live.log_params({"model": cfg.model, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate})
    val_modes = (model_card.inputs_by_mode(val.inputs, val.speakers, card, cfg.seed)
                 if cfg.branches and len(val) else None)  # a fusion chooses its weight over them
    model, history, seconds, initial_epoch = fit(
        cfg, x_train, train.labels, classes, x_val, val.labels if len(val) else None,
        checkpoints=CHECKPOINTS, data_id=data_id, live=live, val_modes=val_modes, x_cold=x_cold)
    if "fusion_weight" in history:
        card["fusion"] = {"image_weight": history.pop("fusion_weight")[0], "combine": cfg.fusion_combine,
                          "val_uar_by_weight": history.pop("fusion_val_uar")}
        history = {k.split("/", 1)[1]: v for k, v in history.items() if k.startswith("image/")}
    epochs_run = len(history.get("loss", []))
    save_model(model, MODEL)
    write_json(CARD, card)
    best = {k: float(np.min(v)) if "loss" in k else float(np.max(v)) for k, v in history.items()
            if k != "learning_rate"}
    live.summary.update({"train_seconds": round(seconds, 1), "epochs": epochs_run + initial_epoch,
                         "images_per_s": round(epochs_run * len(train) / max(seconds, 1e-9), 1)})
    live.end()
    log.info("trained %d epochs in %.0f s; best %s", epochs_run, seconds,
             ", ".join(f"{k} {v:.4f}" for k, v in best.items()))
    return best


def save_model(model, path: Path) -> None:
    """model.save to path, atomically: written beside it (Keras wants a .keras name), then renamed into place."""
    with atomic_path(path) as tmp:
        saved = tmp.with_suffix(".keras")
        model.save(saved)
        saved.replace(tmp)


def _resumable_epoch(checkpoints: Path, fingerprint: str, epochs: int) -> int:
    """The epoch an unfinished run with this fingerprint stopped after (0 when there is none to resume)."""
    last, state_file = checkpoints / "last.keras", checkpoints / "state.json"
    if not (last.exists() and state_file.exists()):
        return 0
    state = json.loads(state_file.read_text())
    if state.get("fingerprint") != fingerprint or state.get("done") or state.get("epoch", 0) >= epochs:
        return 0
    return int(state.get("epoch", 0))


def _resume(checkpoints: Path, fingerprint: str, epochs: int):
    """(model, state) of an unfinished run with this fingerprint, else (None, {})."""
    if not _resumable_epoch(checkpoints, fingerprint, epochs):
        return None, {}
    last = checkpoints / "last.keras"
    state = json.loads((checkpoints / "state.json").read_text())
    from pipeline.zoo import load_model

    log.info("resuming from %s after epoch %d", last, state["epoch"])
    return load_model(last), state


def _resumable(base, saved: dict | None, checkpoints: Path | None, **kwargs):
    """A Keras callback whose counters (and EarlyStopping's best weights) survive an interruption:
    `resume_state()` is saved with each checkpoint and put back after on_train_begin has reset them."""
    fields = ("wait", "best", "best_epoch", "stopped_epoch", "cooldown_counter")
    weights_file = checkpoints / f"{base.__name__}.best.weights.npz" if checkpoints is not None else None

    class Resumable(base):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            for key, value in (saved or {}).items():
                setattr(self, key, float("inf") if value == "inf" else float("-inf") if value == "-inf" else value)
            if saved and weights_file is not None and weights_file.exists() and hasattr(self, "best_weights"):
                with np.load(weights_file) as data:
                    self.best_weights = [data[f"w{i}"] for i in range(len(data.files))]

        def resume_state(self) -> dict:
            out = {}
            for key in fields:
                if hasattr(self, key):
                    value = getattr(self, key)
                    value = float(value) if isinstance(value, (float, np.floating)) else value
                    out[key] = str(value) if value in (float("inf"), float("-inf")) else value
            if weights_file is not None and getattr(self, "best_weights", None) is not None:
                tmp = weights_file.with_name(".tmp." + weights_file.name)
                np.savez(tmp, **{f"w{i}": np.asarray(w) for i, w in enumerate(self.best_weights)})
                tmp.replace(weights_file)
            return out

    Resumable.__name__ = base.__name__
    return Resumable(**kwargs)


def _checkpoint_callback(keras, checkpoints: Path, fingerprint: str, stateful: list):
    last, state_file = checkpoints / "last.keras", checkpoints / "state.json"
    names = {"EarlyStopping": "early_stopping", "ReduceLROnPlateau": "reduce_lr"}

    class Checkpoint(keras.callbacks.Callback):
        """Save the model, the epoch reached and the callbacks' counters after every epoch, atomically."""

        def on_epoch_end(self, epoch, logs=None):
            tmp = last.with_name(".last.tmp.keras")
            self.model.save(tmp)
            tmp.replace(last)
            state = {"epoch": epoch + 1, "fingerprint": fingerprint, "done": False}
            for cb in stateful:
                state[names[type(cb).__name__]] = cb.resume_state()
            write_json(state_file, state)

    return Checkpoint()


def _live_callback(keras, live):
    class LiveCallback(keras.callbacks.Callback):
        """DVCLive logging without dvclive.keras (which imports tf.keras, so TensorFlow only)."""

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            if "learning_rate" not in logs:  # a schedule's rate is not in Keras' logs: read it off the optimizer
                lr = self.model.optimizer.learning_rate
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            for name, value in logs.items():
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

    from pipeline.cli import run_main

    sys.exit(run_main(main))
