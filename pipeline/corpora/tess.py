"""TESS: 14 folders `<speaker>_<emotion>/` holding `<speaker>_<word>_<emotion>.wav`.

Two speakers, both female: OAF (aged 64) and YAF (aged 26); 200 words x 7 emotions x 2 = 2800 files.

The folder is the authority for speaker and emotion: folder names are inconsistent in case and
spelling (`OAF_Fear`, `YAF_pleasant_surprised`) and at least one file name lacks the full speaker
prefix (`OA_bite_neutral.wav` in `OAF_neutral/`). The file name gives the word, and is checked
against the folder so that a file filed under the wrong emotion or speaker is quarantined.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from pipeline.corpora.base import (Entry, FirstSeen, Item, Rejected, child_dirs, detect_layout,
                                   resolve_options, safe_id, walk_audio)

NAME = "tess"
DISPLAY = "TESS"

LABEL_MAP = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
             "neutral": "neutral", "sad": "sad", "ps": "surprise",
             "pleasant_surprise": "surprise", "pleasant_surprised": "surprise"}
DEFAULT_OPTIONS: dict = {}

SPEAKERS = ("OAF", "YAF")  # both female (docstring)
FORMAT = "<speaker>_<word>_<emotion>.wav"
_EMOTION = "|".join(sorted(LABEL_MAP, key=len, reverse=True))  # longest first: pleasant_surprised
FOLDER_RE = re.compile(rf"^(oaf|yaf)_({_EMOTION})$", re.IGNORECASE)
NAME_RE = re.compile(rf"^([a-z]+)_(.+?)_({_EMOTION}|[a-z]+)$", re.IGNORECASE)


def detect(root: Path) -> bool:
    return detect_layout(root, lambda d: any(FOLDER_RE.match(c.name) for c in child_dirs(d)))


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(Path(root))


def _items(root: Path) -> Iterator[Item]:
    seen = FirstSeen(NAME, root)
    items = []
    for path in walk_audio(root):
        item = _item(path)
        if isinstance(item, Entry):
            # Kaggle's upload nests the whole set twice (once in lower case): same folder + name.
            item = seen.duplicate((path.parent.name.lower(), path.name.lower()), path) or item
        items.append(item)
    return iter(_unique_utt_ids(items))


def _item(path: Path) -> Item:
    name = NAME_RE.match(path.stem)
    if not name:
        return Rejected(NAME, path, f"name does not match {FORMAT}")
    prefix, word, file_emotion = name.group(1).upper(), name.group(2), name.group(3).lower()
    folder = FOLDER_RE.match(path.parent.name)
    if folder:
        speaker, emotion = folder.group(1).upper(), folder.group(2).lower()
    elif prefix in SPEAKERS and file_emotion in LABEL_MAP:
        speaker, emotion = prefix, file_emotion  # flat re-packaging: the name says it all
    else:
        return Rejected(NAME, path, f"not in a <speaker>_<emotion> folder and the name does not "
                                    f"give a known speaker ({'/'.join(SPEAKERS)}) and emotion")
    conflict = _conflict(speaker, emotion, prefix, file_emotion)
    if conflict:
        return Rejected(NAME, path, conflict)
    return Entry(corpus=NAME, path=path, utt_id=safe_id(path.stem), speaker=f"{NAME}:{speaker}",
                 original_label=emotion, gender="female", text_id=word.lower())


def _conflict(speaker: str, emotion: str, prefix: str, file_emotion: str) -> str | None:
    """Why the name contradicts the folder, if it does (a truncated prefix like OA is fine)."""
    if prefix in SPEAKERS and prefix != speaker:
        return f"speaker {prefix} in the name but the folder is {speaker}'s"
    if file_emotion in LABEL_MAP and LABEL_MAP[file_emotion] != LABEL_MAP[emotion]:
        return f"emotion {file_emotion} in the name but the folder says {emotion}"
    return None


def _unique_utt_ids(items: list[Item]) -> list[Item]:
    """utt_id is the stem; stems shared by files in different folders get the folder prefixed.

    Compared without case, since image names may land on a case-insensitive file system.
    """
    entries = [it for it in items if isinstance(it, Entry)]
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.utt_id.lower()] = counts.get(e.utt_id.lower(), 0) + 1
    out = []
    for it in items:
        if isinstance(it, Entry) and counts[it.utt_id.lower()] > 1:
            it = replace(it, utt_id=safe_id(f"{it.path.parent.name}_{it.path.stem}"))
        out.append(it)
    return out

