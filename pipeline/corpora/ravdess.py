"""RAVDESS (speech, audio-only): `Actor_01/ ... Actor_24/`, names `MM-VV-EE-II-SS-RR-AA.wav`.

Every field of the name is checked against its documented values, so a file whose name
does not describe a RAVDESS recording is quarantined rather than guessed at.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline import params
from pipeline.corpora.base import (Entry, Excluded, FirstSeen, Item, Rejected, child_dirs,
                                   detect_layout, resolve_options, walk_audio)

NAME = "ravdess"
DISPLAY = "RAVDESS"

EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
            "05": "angry", "06": "fearful", "07": "disgust", "08": "surprise"}
LABEL_MAP = {"neutral": "neutral", "calm": None, "happy": "happy", "sad": "sad",
             "angry": "angry", "fearful": "fearful", "disgust": "disgust", "surprise": "surprise"}
DEFAULT_OPTIONS = {"include_song": False}

FORMAT = "MM-VV-EE-II-SS-RR-AA.wav"
NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
ACTOR_DIR_RE = re.compile(r"^actor_(\d\d)$", re.IGNORECASE)
FIELD_NAMES = ("modality", "vocal channel", "emotion", "intensity", "statement", "repetition",
               "actor")
# Documented values of each field but the emotion (checked against EMOTIONS).
FIELDS = {
    "modality": ("01", "02", "03"),
    "vocal channel": ("01", "02"),
    "intensity": ("01", "02"),
    "statement": ("01", "02"),
    "repetition": ("01", "02"),
    "actor": tuple(f"{i:02d}" for i in range(1, 25)),
}
SONG = "02"


def detect(root: Path) -> bool:
    return detect_layout(root, _has_actor_dirs)


def read_options(options: dict | None) -> dict:
    opts = resolve_options(NAME, DEFAULT_OPTIONS, options)
    return {"include_song": params.boolean(opts, "include_song", f"data.options.{NAME}")}


def prepare(root: Path, options: dict) -> Iterator[Item]:
    return _items(Path(root), read_options(options)["include_song"])


def _has_actor_dirs(folder: Path) -> bool:
    return any(ACTOR_DIR_RE.match(d.name) for d in child_dirs(folder))


def _items(root: Path, include_song: bool) -> Iterator[Item]:
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        yield _item(path, include_song, seen)


def _item(path: Path, include_song: bool, seen: FirstSeen) -> Item:
    fields = _parse(path)
    if isinstance(fields, str):
        return Rejected(NAME, path, fields)
    if fields["vocal channel"] == SONG and not include_song:
        return Excluded(NAME, path, "song (vocal channel 02); include_song is false")
    # The Kaggle upload holds the actor folders twice (top level and audio_speech_actors_01-24/).
    dup = seen.duplicate(path.stem.lower(), path)
    if dup:
        return dup
    actor = fields["actor"]
    return Entry(
        corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{actor}",
        original_label=EMOTIONS[fields["emotion"]],
        gender="male" if int(actor) % 2 else "female",  # documented: odd actors male, even female
        text_id=fields["statement"],
        extra={"intensity": fields["intensity"], "repetition": fields["repetition"],
               "vocal_channel": fields["vocal channel"]},
    )


def _parse(path: Path) -> dict | str:
    """The name's fields, or the reason it is rejected."""
    m = NAME_RE.match(path.stem)
    if not m:
        return f"name does not match {FORMAT}"
    fields = dict(zip(FIELD_NAMES, m.groups()))
    if fields["emotion"] not in EMOTIONS:
        return f"emotion code {fields['emotion']} unknown (01-08)"
    for key, allowed in FIELDS.items():
        if fields[key] not in allowed:
            return f"{key} {fields[key]} not one of {allowed[0]}-{allowed[-1]}"
    # A name that contradicts its Actor_NN folder is ambiguous about the speaker.
    folder = ACTOR_DIR_RE.match(path.parent.name)
    if folder and folder.group(1) != fields["actor"]:
        return f"actor {fields['actor']} in the name but the file is in {path.parent.name}/"
    return fields
