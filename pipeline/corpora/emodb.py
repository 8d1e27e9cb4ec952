"""EmoDB (Berlin): `wav/03a01Fa.wav` = speaker, text code, emotion letter (German), version."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline.corpora.base import (Entry, FirstSeen, Item, Rejected, child_files, detect_layout,
                                   find_child, resolve_options, walk_audio)

NAME = "emodb"
DISPLAY = "EMODB"

# W Aerger, E Ekel, A Angst, F Freude, N neutral, T Trauer, L Langeweile (boredom, dropped).
LABEL_MAP = {"w": "angry", "e": "disgust", "a": "fearful", "f": "happy", "n": "neutral",
             "t": "sad", "l": None}
DEFAULT_OPTIONS: dict = {}

GENDERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
           "12": "male", "13": "female", "14": "female", "15": "male", "16": "female"}
FORMAT = "<speaker NN><text a01..b10><emotion letter><version>.wav (03a01Fa.wav)"
NAME_RE = re.compile(r"^(\d\d)([ab]\d\d)([a-z])([a-z])$", re.IGNORECASE)


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(Path(root))


def _looks_like_root(folder: Path) -> bool:
    wav = find_child(folder, "wav")
    files = list(child_files(wav)) if wav is not None else []
    files += child_files(folder)  # flat re-packagings drop wav/
    return any(isinstance(_parse(f), tuple) for f in files)


def _items(root: Path) -> Iterator[Item]:
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        item = _item(path)
        if isinstance(item, Entry):
            item = seen.duplicate(path.stem.lower(), path) or item
        yield item


def _item(path: Path) -> Item:
    parsed = _parse(path)
    if isinstance(parsed, str):
        return Rejected(NAME, path, parsed)
    speaker, text, emotion, version = parsed
    return Entry(corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{speaker}",
                 original_label=emotion, gender=GENDERS[speaker], text_id=text,
                 extra={"version": version})


def _parse(path: Path) -> tuple[str, str, str, str] | str:
    """(speaker, text code, emotion letter, version), or the reason the file is rejected."""
    m = NAME_RE.match(path.stem)
    if not m:
        return f"name does not match {FORMAT}"
    speaker, text, emotion, version = m.group(1), *(g.lower() for g in m.groups()[1:])
    if speaker not in GENDERS:
        return f"speaker {speaker} unknown ({' '.join(GENDERS)})"
    if not 1 <= int(text[1:]) <= 10:
        return f"text code {text} outside a01..a10 / b01..b10"
    if emotion not in LABEL_MAP:
        return f"emotion letter {emotion.upper()} unknown (W E A F N T L)"
    return speaker, text, emotion, version
