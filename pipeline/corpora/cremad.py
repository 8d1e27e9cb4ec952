"""CREMA-D: `AudioWAV/ActorID_SentenceID_Emotion_Level.wav`, gender from `VideoDemographics.csv`."""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator

from pipeline.corpora.base import (Entry, Excluded, FirstSeen, Item, Rejected, child_files,
                                   detect_layout, find_child, resolve_options, unwrap, walk_audio)

NAME = "cremad"
DISPLAY = "CREMAD"

LABEL_MAP = {"ang": "angry", "dis": "disgust", "fea": "fearful", "hap": "happy",
             "neu": "neutral", "sad": "sad"}
DEFAULT_OPTIONS: dict = {}

FORMAT = "ActorID_SentenceID_Emotion_Level.wav"
NAME_RE = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})$")
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")
ACTORS = range(1001, 1092)
AUDIO_DIR = "AudioWAV"
DEMOGRAPHICS = "VideoDemographics.csv"


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(Path(root))


def _looks_like_root(folder: Path) -> bool:
    audio = find_child(folder, AUDIO_DIR)
    if audio is not None and audio.is_dir():
        return True
    # Some re-packagings drop AudioWAV/ and keep the files flat.
    return any(NAME_RE.match(p.stem) for p in child_files(folder))


def _items(root: Path) -> Iterator[Item]:
    corpus_root = unwrap(root, _looks_like_root)
    has_audio_dir = _audio_dir(corpus_root) is not None
    genders = _genders(root, corpus_root)
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        # The full repository also holds AudioMP3/ (and videos): other renditions of the
        # AudioWAV recordings, which must not count twice.
        if has_audio_dir and not _in_audio_dir(path, root):
            yield Excluded(NAME, path,
                           f"outside {AUDIO_DIR}/ (another rendition of the same recordings)")
            continue
        yield _item(path, genders, seen)


def _audio_dir(corpus_root: Path) -> Path | None:
    audio = find_child(corpus_root, AUDIO_DIR)
    return audio if audio is not None and audio.is_dir() else None


def _in_audio_dir(path: Path, root: Path) -> bool:
    return AUDIO_DIR.lower() in (part.lower() for part in path.relative_to(root).parts[:-1])


def _item(path: Path, genders: dict, seen: FirstSeen) -> Item:
    fields = _parse(path)
    if isinstance(fields, str):
        return Rejected(NAME, path, fields)
    actor, sentence, emotion, level = fields
    dup = seen.duplicate(path.stem.lower(), path)
    if dup:
        return dup
    return Entry(corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{actor}",
                 original_label=emotion.lower(), gender=genders.get(actor), text_id=sentence,
                 extra={"level": level})


def _parse(path: Path) -> tuple[str, str, str, str] | str:
    """(actor, sentence, emotion, level), or the reason the file is rejected."""
    m = NAME_RE.match(path.stem)
    if not m:
        return f"name does not match {FORMAT}"
    actor, sentence, emotion, level = m.group(1), *(g.upper() for g in m.groups()[1:])
    if int(actor) not in ACTORS:
        return f"actor {actor} outside 1001-1091"
    if sentence not in SENTENCES:
        return f"sentence code {sentence} unknown ({' '.join(SENTENCES)})"
    if emotion.lower() not in LABEL_MAP:
        return f"emotion code {emotion} unknown (ANG DIS FEA HAP NEU SAD)"
    if level not in LEVELS:
        return f"level {level} unknown ({' '.join(LEVELS)})"
    return actor, sentence, emotion, level


def _genders(root: Path, corpus_root: Path) -> dict[str, str]:
    """ActorID -> "male"/"female" from VideoDemographics.csv when the release includes it."""
    folder = corpus_root
    while True:
        csv_path = find_child(folder, DEMOGRAPHICS)
        if csv_path is not None and csv_path.is_file():
            return _read_demographics(csv_path)
        if folder == root or root not in folder.parents:
            return {}
        folder = folder.parent


def _read_demographics(csv_path: Path) -> dict[str, str]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return {}
    out = {}
    for row in rows:
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        sex = row.get("sex", "").lower()
        if row.get("actorid") and sex in ("male", "female"):  # anything else stays unknown
            out[row["actorid"]] = sex
    return out
