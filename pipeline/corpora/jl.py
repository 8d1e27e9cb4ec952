"""JL-Corpus: `Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_10a_1.wav`.

The raw folder holds every recording once, with a same-named `.txt` transcript. The release also
holds the same recordings again (selected-file folders, a partial lower-case copy of the raw
folder): when the raw folder is there, everything outside it is Excluded so that no recording
counts twice.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline.corpora.base import (Entry, Excluded, FirstSeen, Item, Rejected, child_files,
                                   detect_layout, find_child, relative, resolve_options,
                                   walk_audio)
from pipeline.files import walk

NAME = "jl"
DISPLAY = "JL"

PRIMARY = {"angry": "angry", "sad": "sad", "neutral": "neutral", "happy": "happy", "excited": None}
SECONDARY = ("anxious", "apologetic", "assertive", "concerned", "encouraging", "pensive",
             "worried", "enthusiastic")
LABEL_MAP = {**PRIMARY, **{e: None for e in SECONDARY}}  # secondary emotions dropped by default
DEFAULT_OPTIONS: dict = {}

RAW_PARENT = "Raw JL corpus (unchecked and unannotated)"
RAW_DIR = "JL(wav+txt)"
SPEAKERS = ("female1", "female2", "male1", "male2")
FORMAT = "<speaker>_<emotion>_<sentence><a|b>_<take>.wav"
NAME_RE = re.compile(r"^([a-z]+\d)_([a-z]+)_(\d+[ab])_(\d+)$", re.IGNORECASE)


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(Path(root))


def _looks_like_root(folder: Path) -> bool:
    raw_parent = find_child(folder, RAW_PARENT)
    if find_child(folder, RAW_DIR) is not None or raw_parent is not None:
        return True
    return any(NAME_RE.match(f.stem) for f in child_files(folder))


def _items(root: Path) -> Iterator[Item]:
    raw = _raw_folder(root)
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        if raw is not None and raw not in path.parents:
            yield Excluded(NAME, path, f"outside the raw folder {relative(raw, root)}/ "
                                       "(selected or copied files duplicate its recordings)")
            continue
        item = _item(path)
        if isinstance(item, Entry):
            item = seen.duplicate(path.stem.lower(), path) or item
        yield item


def _raw_folder(root: Path) -> Path | None:
    """The JL(wav+txt) folder (any case) holding the most audio: the upload also has a partial
    lower-case copy of it, which must not win."""
    candidates = []
    for dirpath, dirnames, _ in walk(root):
        candidates += [dirpath / d for d in dirnames if d.lower() == RAW_DIR.lower()]
    counts = {d: sum(1 for _ in walk_audio(d)) for d in sorted(candidates)}
    best = max(counts, key=counts.get, default=None)
    return best if best is not None and counts[best] else None


def _item(path: Path) -> Item:
    m = NAME_RE.match(path.stem)
    if not m:
        return Rejected(NAME, path, f"name does not match {FORMAT}")
    speaker, emotion, sentence, take = (g.lower() for g in m.groups())
    if speaker not in SPEAKERS:
        return Rejected(NAME, path, f"speaker {speaker} unknown ({' '.join(SPEAKERS)})")
    if emotion not in LABEL_MAP:
        return Rejected(NAME, path, f"emotion {emotion} unknown ({' '.join(LABEL_MAP)})")
    gender = "female" if speaker.startswith("female") else "male"  # the name says it
    text = _transcript(path)
    return Entry(corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{speaker}",
                 original_label=emotion, gender=gender, text_id=sentence,
                 extra={"take": take, **({"text": text} if text else {})})


def _transcript(path: Path) -> str | None:
    """The same-named .txt transcript (extension in any case), if there is one."""
    for suffix in (".txt", ".TXT", ".Txt"):
        txt = path.with_suffix(suffix)
        if txt.is_file():
            try:
                return txt.read_text(encoding="utf-8", errors="replace").strip() or None
            except OSError:
                return None
    return None
