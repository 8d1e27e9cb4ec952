"""What a trained model carries with it, its card (models/card.json): the class order, the inputs it reads and, for each,
its shape and speaker normalisation (pipeline/normalisation.py, whole: policy constants and population
statistics), and the settings those inputs were made with: the audio and feature settings of the shards it
was trained on (read from the shards' metadata, not from params.yaml), the image's value scale included.

predict, export, evaluate and crossval build a model's input from the card with `model_inputs`, never from
today's params.yaml, so editing `features.n_mels` after training, or scoring with a model from another
experiment, cannot silently feed the model a different input. Keras-free.

    card = make(model, classes, {"image": (shape, normaliser)}, settings)
    x, used = model_inputs(data.inputs, card, speakers=...)      # per row: which statistics it got
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.normalisation import SpeakerNormaliser

CARD_VERSION = 3
# settings that change what an input row holds; a model trained with one value must be fed the same
SETTING_SECTIONS = ("audio", "features")


def shard_settings(shards: list[Path]) -> dict:
    """The audio/feature settings the shards were rendered with, and their image's value scale; every shard
    must agree."""
    from pipeline.shards import read_metadata

    seen = None
    for shard in shards:
        meta = read_metadata(shard)
        settings = {k: meta.get(k) for k in SETTING_SECTIONS}
        if None in settings.values():
            raise UserError(f"{shard} carries no render settings (rendered by an older version): "
                            f"re-run the render stage (dvc repro render)")
        settings["image_scale"] = meta.get("image_scale")
        if seen is None:
            seen = settings
        elif settings != seen:
            raise UserError(f"shards disagree on their render settings ({shards[0].name} vs {shard.name}): "
                            f"re-run the render stage (dvc repro render)")
    return seen or {}


def layout(kind: str, settings: dict) -> str:
    """How an input's statistics are taken: per band over frames for a native spectrogram, else per value."""
    return "spectrogram" if kind == "image" and settings.get("image_scale") else "vector"


def normaliser(kind: str, mode: str, settings: dict, scale: str = "speaker",
               shrinkage: bool = False, population_weighting: str = "clips",
               cold: str = "population") -> SpeakerNormaliser:
    """The speaker normaliser of an input kind (not fitted). The papers' 8-bit image (min-max scaled per image,
    so no level survives to normalise) is never normalised."""
    from pipeline.features import image_floor

    if kind == "image" and not settings.get("image_scale"):
        mode = "none"
    return SpeakerNormaliser(layout=layout(kind, settings), mode=mode, scale=scale, shrinkage=shrinkage,
                             population_weighting=population_weighting, cold=cold, floor=image_floor(settings.get("image_scale")) if kind == "image" else None)


def values(kind: str, raw: np.ndarray, scale: dict | None) -> np.ndarray:
    """Raw shard rows of one input -> float values before normalisation: a native image in dB; the papers'
    8-bit image scaled to 0..1; features as they are."""
    if kind != "image":
        return np.asarray(raw, dtype=np.float32)
    from pipeline.features import image_values

    return image_values(raw, scale)


def make(model: str, classes: list[str], inputs: dict, settings: dict) -> dict:
    """inputs: {kind: (shape without batch, fitted SpeakerNormaliser)}."""
    return {"version": CARD_VERSION, "labels": list(classes), "model": model,
            "inputs": {kind: {"shape": [int(v) for v in shape], "normalisation": norm.to_card(),
                              **({"scale": settings.get("image_scale")} if kind == "image" else {})}
                       for kind, (shape, norm) in inputs.items()},
            **{k: settings[k] for k in SETTING_SECTIONS}}


def trained_on(meta) -> dict:
    """{"speakers": N, "clips": M} a model learnt from: its training rows' originals (augmented copies are not
    more clips) and their speakers (a speaker is a corpus's: the same name in two corpora is two people)."""
    originals = meta[~meta["augmented"].to_numpy(dtype=bool)] if "augmented" in meta else meta
    return {"speakers": int(originals[["corpus", "speaker"]].drop_duplicates().shape[0]),
            "clips": int(len(originals))}


def read(path: Path) -> dict:
    from pipeline.paths import OLD_CARD_NAME

    path = Path(path)
    if not path.exists():
        old = path.with_name(OLD_CARD_NAME)
        if old.exists():
            raise UserError(f"{path} not found, only {old}: the model card's name before it was {path.name}; "
                            f"the model was trained by an older version, re-train it (dvc repro train)")
        raise UserError(f"{path} not found: train a model first (dvc repro train)")
    card = json.loads(path.read_text())
    if card.get("version") != CARD_VERSION or any(k not in card for k in ("labels", "inputs", *SETTING_SECTIONS)):
        raise UserError(f"{path} is a model card of an older version (it lacks the inputs' normalisation or "
                        f"settings): re-train the model (dvc repro train)")
    return card


def input_kinds(card: dict) -> tuple[str, ...]:
    return tuple(card["inputs"])


def normalisers(card: dict) -> dict[str, SpeakerNormaliser]:
    return {kind: SpeakerNormaliser.from_card(spec["normalisation"]) for kind, spec in card["inputs"].items()}


def configs(card: dict):
    """(AudioConfig, FeatureConfig) the model's inputs were made with; the feature extras are the model's own
    feature inputs alone, whatever the card's render settings listed."""
    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig

    audio = AudioConfig(**card["audio"])
    feats = dict(card["features"])
    known = {f.name for f in dataclasses.fields(FeatureConfig)}
    fcfg = FeatureConfig(**{k: v for k, v in feats.items() if k in known})
    # compute only what the model reads: the image, and its feature columns
    return audio, dataclasses.replace(fcfg, extra=tuple(k for k in input_kinds(card) if k != "image"))


def setting_diffs(expected: dict, settings: dict, whose: str) -> list[str]:
    """'section.key <settings' value> (<whose>: <expected value>)' for each audio/feature setting that differs;
    `extra` is left out (extra columns only add inputs; a model's own are checked when it is loaded)."""
    diffs = []
    for section in SETTING_SECTIONS:
        mine, theirs = expected.get(section, {}), settings.get(section, {})
        for key in sorted(set(mine) | set(theirs)):
            if key != "extra" and mine.get(key) != theirs.get(key):
                diffs.append(f"{section}.{key} {theirs.get(key)!r} ({whose}: {mine.get(key)!r})")
    return diffs


def check_matches(card: dict, settings: dict, what: str) -> None:
    """UserError when `settings` (of shards about to be scored) differ from those the model was trained on."""
    diffs = setting_diffs(card, settings, "model")
    if diffs:
        raise UserError(f"{what} were rendered with other settings than the model was trained on: "
                        f"{'; '.join(diffs[:5])}. Re-run `dvc repro` so the model and the data agree.")


def check_rendered_as_params(params: dict, settings: dict) -> None:
    """UserError when the shards were rendered with other audio/feature settings than params.yaml says (a run
    outside DVC, e.g. bench/crossval_grid.py with -S features.*, would otherwise train on other inputs)."""
    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig

    wanted = {"audio": dataclasses.asdict(AudioConfig.from_params(params)),
              "features": dataclasses.asdict(FeatureConfig.from_params(params))}
    diffs = setting_diffs(wanted, settings, "params")
    if diffs:
        raise UserError(f"the shards were rendered with other settings than params.yaml: {'; '.join(diffs[:5])}. "
                        f"Re-run the render stage (dvc repro render)")


def model_inputs(raw: dict, card: dict, speakers=None, statistics: dict | None = None,
                 norms: dict | None = None) -> tuple[dict, np.ndarray]:
    """The model's inputs from raw rows {kind: array}, and per row which statistics normalised it.

    speakers: a speaker per row, or None (no speaker statistics: the population's, the cold path);
    statistics: {speaker: {kind: Statistics}} taken elsewhere than from these rows (enrolment clips, or every
    recording of the speaker: see speaker_statistics); without, a speaker's own rows here give its statistics."""
    norms = norms or normalisers(card)
    out, used = {}, None
    for kind, spec in card["inputs"].items():
        norm = norms[kind]
        if kind == "image" and spec.get("scale") is None and norm.mode == "none":
            out[kind] = np.asarray(raw[kind])  # the papers' 8-bit image: scaled to 0..1 per batch (memory)
            continue
        given = None if statistics is None else {spk: s[kind] for spk, s in statistics.items()}
        result = norm.normalise(values(kind, raw[kind], spec.get("scale")), speakers, given)
        out[kind] = result.x
        if used is None or norm.mode != "none":
            used = result.used
    if used is None:
        used = np.full(len(next(iter(raw.values()))), "none", dtype=object)
    return out, used


def speaker_statistics(raw: dict, card: dict, source: str = "enrolled", norms: dict | None = None,
                       neutral: bool = False) -> dict:
    """{kind: Statistics} of one speaker's raw rows (its enrolment clips), for model_inputs' `statistics`;
    neutral: the clips are neutral speech, moved by the card's neutral offset (SpeakerNormaliser)."""
    norms = norms or normalisers(card)
    out = {kind: norms[kind].statistics(values(kind, raw[kind], spec.get("scale")), source)
           for kind, spec in card["inputs"].items() if norms[kind].mode not in ("none", "utterance")}
    return {kind: norms[kind].neutral_statistics(st) for kind, st in out.items()} if neutral else out


ENROL_CLIPS = (5, 10)  # enrolment sizes measured: a few recordings a user gives to learn a new speaker
MODES = ("transductive", "enrolled5", "enrolled10", "cold")  # the ways a user meets the model


def enrolment_draw(speakers: np.ndarray, n: int, seed: int) -> np.ndarray:
    """bool per row: the n enrolment clips drawn for each speaker (whatever their labels), seeded by the seed
    and the speaker; a speaker with n clips or fewer has none drawn (nothing would be left to score)."""
    from pipeline.seeding import stable_rng

    chosen = np.zeros(len(speakers), dtype=bool)
    for spk in sorted(set(speakers.tolist())):
        rows = np.flatnonzero(speakers == spk)
        if len(rows) > n:
            chosen[stable_rng(seed, "enrol", str(spk), str(n)).choice(rows, size=n, replace=False)] = True
    return chosen


NEUTRAL_MODE = "enrolled_neutral"  # enrolled on the speaker's neutral clips only, as a user enrols with everyday speech
NEUTRAL_CLIPS = 10  # at most this many of a speaker's neutral clips enrol it (fewer where it has fewer)


def neutral_draw(speakers: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """bool per row: up to n of each speaker's neutral clips (all of them when it has n or fewer), seeded by the
    seed and the speaker. What a user who enrols with everyday speech gives; a speaker with none has none."""
    from pipeline.seeding import stable_rng

    chosen = np.zeros(len(speakers), dtype=bool)
    neutral = np.asarray(labels) == "neutral"
    for spk in sorted(set(speakers.tolist())):
        rows = np.flatnonzero((speakers == spk) & neutral)
        if len(rows) > n:
            rows = stable_rng(seed, "enrol-neutral", str(spk), str(n)).choice(rows, size=n, replace=False)
        chosen[rows] = True
    return chosen


def _enrolled_inputs(raw: dict, speakers: np.ndarray, drawn: np.ndarray, card: dict, norms: dict,
                     neutral: bool = False):
    """(rows scored, their inputs): the rows not drawn, each speaker normalised on its drawn clips' statistics
    (a speaker with none drawn: the cold path; neutral: the drawn clips are neutral speech)."""
    statistics = {spk: speaker_statistics({k: v[drawn & (speakers == spk)] for k, v in raw.items()}, card, norms=norms,
                                          neutral=neutral)
                  for spk in sorted(set(speakers[drawn].tolist()))}
    who = np.array([s if s in statistics else None for s in speakers[~drawn]], dtype=object)
    scored = {k: v[~drawn] for k, v in raw.items()}
    return ~drawn, model_inputs(scored, card, speakers=who, statistics=statistics, norms=norms)[0]


def inputs_by_mode(raw: dict, speakers: np.ndarray, card: dict, seed: int, norms: dict | None = None,
                   labels: np.ndarray | None = None) -> dict:
    """The model's inputs for rows of known speakers, made the three ways a user meets the model:
    transductive (each speaker normalised on all of its clips), enrolledN (on N drawn clips of the speaker, which
    are then not scored; a speaker with N or fewer clips gets none: the cold path) and cold (no statistics of the
    speaker: the training population's). With `labels`, also enrolled_neutral (NEUTRAL_MODE: on up to
    NEUTRAL_CLIPS of the speaker's neutral clips, then not scored, moved by the card's neutral offset). -> {mode: (bool mask of the rows scored,
    their inputs)}."""
    norms = norms or normalisers(card)
    speakers = np.asarray(speakers, dtype=object)
    every = np.ones(len(speakers), dtype=bool)
    out = {"transductive": (every, model_inputs(raw, card, speakers=speakers, norms=norms)[0]),
           "cold": (every, model_inputs(raw, card, speakers=None, norms=norms)[0])}
    for n in ENROL_CLIPS:
        out[f"enrolled{n}"] = _enrolled_inputs(raw, speakers, enrolment_draw(speakers, n, seed), card, norms)
    modes = MODES
    if labels is not None:
        out[NEUTRAL_MODE] = _enrolled_inputs(raw, speakers, neutral_draw(speakers, labels, NEUTRAL_CLIPS, seed),
                                             card, norms, neutral=True)
        modes = MODES + (NEUTRAL_MODE,)
    return {mode: out[mode] for mode in modes}


class StatisticsAccumulator:
    """One speaker's statistics for every input of a model, from raw rows added a chunk at a time (predict)."""

    def __init__(self, card: dict, norms: dict | None = None, source: str = "speaker", neutral: bool = False):
        self.card, self.source, self.neutral = card, source, neutral
        norms = norms or normalisers(card)
        self.norms = norms
        self.acc = {kind: norms[kind].accumulator() for kind in card["inputs"]
                    if norms[kind].mode not in ("none", "utterance")}

    def add(self, raw: dict) -> None:
        for kind, acc in self.acc.items():
            acc.add(values(kind, raw[kind], self.card["inputs"][kind].get("scale")))

    def statistics(self) -> dict:
        out = {kind: acc.statistics(self.source) for kind, acc in self.acc.items()}
        return {k: self.norms[k].neutral_statistics(v) for k, v in out.items()} if self.neutral else out


def calibrate(probs: np.ndarray, card: dict, used) -> np.ndarray:
    """The model's probabilities scaled by the card's temperatures (pipeline/calibration.py): a row normalised on
    its speaker's own statistics (or a recording on its own segments) by the `speaker` one, on enrolled ones by
    `enrolled`, any other (one file of a stranger) by `cold`.
    A card without calibration (the train stage's single-split model) leaves them as they are."""
    from pipeline.calibration import scaled

    temps = (card.get("calibration") or {}).get("temperature") or {}
    if not temps:
        return probs
    # a recording normalised on its own segments (predict --segments) is met as a speaker with its recordings
    group = np.array(["speaker" if str(u).startswith(("speaker", "recording")) else
                      "enrolled" if str(u).startswith("enrolled") else "cold" for u in used], dtype=object)
    out = np.array(probs, dtype=np.float64, copy=True)
    for name, t in temps.items():
        rows = group == name
        if rows.any():
            out[rows] = scaled(out[rows], t)
    return out.astype(np.float32)


def as_model_input(inputs: dict):
    """What Keras' fit/predict take: the array of a single-input model, the dict of a multi-input one."""
    return next(iter(inputs.values())) if len(inputs) == 1 else inputs
