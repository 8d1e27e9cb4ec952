"""SAVEE: official `AudioData/DC/a01.wav` (one folder per speaker) or flat `DC_a01.wav`.

Four male speakers (DC, JE, JK, KL), 120 files each: 480 in all (neutral has 30 sentences, the others 15).

The emotion code is the letters before the number; the two-letter codes sa (sad) and su
(surprise) are matched before the one-letter ones, so `sa01` is never read as `s` + `a01`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline.corpora.base import (Entry, FirstSeen, Item, Rejected, child_dirs, child_files,
                                   detect_layout, find_child, resolve_options, walk_audio)

NAME = "savee"
DISPLAY = "SAVEE"

LABEL_MAP = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral",
             "sa": "sad", "su": "surprise"}
DEFAULT_OPTIONS: dict = {}

SPEAKERS = ("DC", "JE", "JK", "KL")  # all male (docstring)
_CODE = r"(sa|su|a|d|f|h|n)(\d\d)"
OFFICIAL_RE = re.compile(rf"^{_CODE}$", re.IGNORECASE)
FLAT_RE = re.compile(rf"^([a-z]{{2}})_{_CODE}$", re.IGNORECASE)
SENTENCES = {"n": 30}  # neutral has 30 sentences, every other emotion 15
FORMAT = "<code><NN>.wav in a speaker folder, or <speaker>_<code><NN>.wav"


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(Path(root))


def _looks_like_root(folder: Path) -> bool:
    audio_data = find_child(folder, "AudioData")
    if audio_data is not None and audio_data.is_dir():
        return True
    speaker_dirs = [d for d in child_dirs(folder) if d.name.upper() in SPEAKERS]
    if any(OFFICIAL_RE.match(f.stem) for d in speaker_dirs for f in child_files(d)):
        return True
    return any(_flat(f.stem) for f in child_files(folder))


def _flat(stem: str) -> bool:
    m = FLAT_RE.match(stem)
    return bool(m) and m.group(1).upper() in SPEAKERS


def _items(root: Path) -> Iterator[Item]:
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        item = _item(path)
        if isinstance(item, Entry):
            # Both layouts side by side (or a second copy) give the same speaker + code twice.
            item = seen.duplicate(item.utt_id.lower(), path) or item
        yield item


def _item(path: Path) -> Item:
    parsed = _parse(path)
    if isinstance(parsed, str):
        return Rejected(NAME, path, parsed)
    speaker, code, number = parsed
    if not 1 <= int(number) <= SENTENCES.get(code, 15):
        return Rejected(NAME, path, f"sentence {number} out of range for {code} "
                                    f"(01-{SENTENCES.get(code, 15)})")
    return Entry(corpus=NAME, path=path, utt_id=f"{speaker}_{code}{number}",
                 speaker=f"{NAME}:{speaker}", original_label=code, gender="male",
                 text_id=f"{code}{number}")


def _parse(path: Path) -> tuple[str, str, str] | str:
    """(speaker, code, number) from either layout, or the reason the file is rejected."""
    folder = path.parent.name.upper()
    flat = FLAT_RE.match(path.stem)
    if flat:
        speaker = flat.group(1).upper()
        if speaker not in SPEAKERS:
            return f"speaker {speaker} unknown ({' '.join(SPEAKERS)})"
        if folder in SPEAKERS and folder != speaker:
            return f"speaker {speaker} in the name but the file is in {path.parent.name}/"
        return speaker, flat.group(2).lower(), flat.group(3)
    official = OFFICIAL_RE.match(path.stem)
    if official and folder in SPEAKERS:
        return folder, official.group(1).lower(), official.group(2)
    if official:
        return f"not in a speaker folder ({' '.join(SPEAKERS)}) and the name has no speaker prefix"
    return f"name does not match {FORMAT} (codes a d f h n sa su)"
