"""What a trained model carries with it, its card (models/card.json): the class order, the input it reads, and the
settings that input was made with: the audio and feature settings of the shards it was trained on (read from
the shards' metadata, not from params.yaml) and its input normalisation.

predict, export and evaluate build their input from the card, never from today's params.yaml, so editing
`features.n_mels` after training, or scoring with a model from another experiment, cannot silently feed the
model a different input. Keras-free.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

CARD_VERSION = 2
# settings that change what an input row holds; a model trained with one value must be fed the same
SETTING_SECTIONS = ("audio", "features")


def shard_settings(shards: list[Path]) -> dict:
    """The audio/feature settings the shards were rendered with; every shard must agree."""
    from pipeline.shards import read_metadata

    seen = None
    for shard in shards:
        meta = read_metadata(shard)
        settings = {k: meta.get(k) for k in SETTING_SECTIONS}
        if None in settings.values():
            raise UserError(f"{shard} carries no render settings (rendered by an older version): "
                            f"re-run the render stage (dvc repro render)")
        if seen is None:
            seen = settings
        elif settings != seen:
            raise UserError(f"shards disagree on their render settings ({shards[0].name} vs {shard.name}): "
                            f"re-run the render stage (dvc repro render)")
    return seen or {}


def make(model: str, input_kind: str, classes: list[str], input_shape, settings: dict,
         speaker_norm: bool = False, population: dict | None = None) -> dict:
    card = {"version": CARD_VERSION, "labels": list(classes), "model": model, "input": input_kind,
            "input_shape": [int(v) for v in input_shape], **settings,
            "speaker_norm": bool(speaker_norm)}
    if speaker_norm and population is not None:
        # for a speaker with too few files to have statistics of its own (predict on one file)
        card["population"] = {k: np.asarray(v, dtype=np.float32).tolist() for k, v in population.items()}
    return card


def read(path: Path) -> dict:
    from pipeline.paths import OLD_CARD_NAME

    if not Path(path).exists():
        old = Path(path).with_name(OLD_CARD_NAME)
        if old.exists():
            raise UserError(f"{path} not found, only {old}: the model card's name before it was {Path(path).name}; "
                            f"the model was trained by an older version, re-train it (dvc repro train)")
        raise UserError(f"{path} not found: train a model first (dvc repro train)")
    card = json.loads(Path(path).read_text())
    missing = [k for k in ("labels", "input", *SETTING_SECTIONS) if k not in card]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: the model was trained by an older version that did "
                        f"not record its settings; re-train it (dvc repro train)")
    return card


def configs(card: dict):
    """(AudioConfig, FeatureConfig) the model's input was made with; the feature extras are the model's own
    input column alone (none for an image model), whatever the card's render settings listed."""
    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig

    audio = AudioConfig(**card["audio"])
    feats = dict(card["features"])
    feats["extra"] = tuple(feats.get("extra") or ())
    feats.setdefault("functionals_on", "window")  # a card from before the setting: functionals of the window
    fcfg = FeatureConfig(**feats)
    kind = card["input"]
    # compute only what the model reads: the image alone, or its one feature column
    fcfg = dataclasses.replace(fcfg, extra=() if kind == "image" else (kind,))
    return audio, fcfg


def check_matches(card: dict, settings: dict, what: str) -> None:
    """UserError when `settings` (of shards about to be scored) differ from those the model was trained on."""
    diffs = []
    for section in SETTING_SECTIONS:
        mine, theirs = card.get(section, {}), settings.get(section, {})
        for key in sorted(set(mine) | set(theirs)):
            if key == "extra":
                continue  # extra columns only add inputs; the model's own is checked when loading
            if mine.get(key) != theirs.get(key):
                diffs.append(f"{section}.{key} {theirs.get(key)!r} (model: {mine.get(key)!r})")
    if diffs:
        raise UserError(f"{what} were rendered with other settings than the model was trained on: "
                        f"{'; '.join(diffs[:5])}. Re-run `dvc repro` so the model and the data agree.")


def inputs(x: np.ndarray, speakers, card: dict) -> np.ndarray:
    """The model's input from raw rows: speaker standardisation when the card says so (feature inputs)."""
    if not card.get("speaker_norm") or card["input"] == "image":
        return x
    from pipeline.dataset import standardise_by_speaker

    return standardise_by_speaker(x, speakers, stats=card.get("population"))
