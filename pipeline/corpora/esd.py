"""ESD: `0011/Angry/0011_000351.wav`, optionally `0011/Angry/train/...` (evaluation, test).

The emotion comes from the emotion folder; the speaker from the name, checked against the
speaker folder. Speakers 0001-0010 are Mandarin, 0011-0020 English; `languages` selects.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from pipeline import params
from pipeline.corpora.base import (Entry, Excluded, FirstSeen, Item, Rejected, child_dirs,
                                   detect_layout, find_child, resolve_options, walk_audio)
from pipeline.errors import ParamsError

NAME = "esd"
DISPLAY = "ESD"

LABEL_MAP = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad",
             "surprise": "surprise"}
DEFAULT_OPTIONS = {"languages": ["english"]}
LANGUAGES = ("english", "mandarin")

FORMAT = "<speaker>_<utterance>.wav (0011_000001.wav)"
NAME_RE = re.compile(r"^(\d{4})_(\d{6})$")
SPEAKER_DIR_RE = re.compile(r"^\d{4}$")
SUBSETS = ("train", "evaluation", "test")  # optional level inside each emotion folder


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def read_options(options: dict | None) -> dict:
    opts = resolve_options(NAME, DEFAULT_OPTIONS, options)
    key = f"data.options.{NAME}"
    languages = params.string_list(opts, "languages", key, allowed=LANGUAGES)
    if not languages:
        raise ParamsError(f"{key}.languages", f"name at least one of: {', '.join(LANGUAGES)}")
    return {"languages": languages}


def prepare(root: Path, options: dict) -> Iterator[Item]:
    return _items(Path(root), set(read_options(options)["languages"]))


def _looks_like_root(folder: Path) -> bool:
    return any(_language(d.name) and _has_emotion_dir(d) for d in child_dirs(folder))


def _has_emotion_dir(speaker_dir: Path) -> bool:
    return any(d.name.lower() in LABEL_MAP for d in child_dirs(speaker_dir))


def _language(speaker: str) -> str | None:
    if not SPEAKER_DIR_RE.match(speaker):
        return None
    n = int(speaker)
    return "mandarin" if 1 <= n <= 10 else "english" if 11 <= n <= 20 else None


def _items(root: Path, languages: set[str]) -> Iterator[Item]:
    seen = FirstSeen(NAME, root)
    transcripts: dict[Path, dict[str, str]] = {}
    for path in walk_audio(root):
        item = _item(path, languages)
        if isinstance(item, Entry):
            item = seen.duplicate(path.stem, path) or _with_text(item, transcripts)
        yield item


def _item(path: Path, languages: set[str]) -> Item:
    m = NAME_RE.match(path.stem)
    if not m:
        return Rejected(NAME, path, f"name does not match {FORMAT}")
    speaker, utterance = m.groups()
    language = _language(speaker)
    if language is None:
        return Rejected(NAME, path, f"speaker {speaker} outside 0001-0020")
    emotion_dir = _emotion_dir(path)
    emotion = emotion_dir.name.lower()
    if emotion not in LABEL_MAP:
        return Rejected(NAME, path, "not in an emotion folder (Angry Happy Neutral Sad Surprise)")
    if emotion_dir.parent.name != speaker:
        return Rejected(NAME, path, f"speaker {speaker} in the name but the file is under "
                                    f"{emotion_dir.parent.name}/")
    if language not in languages:
        return Excluded(NAME, path, f"{language} speaker; languages is {sorted(languages)}")
    return Entry(corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{speaker}",
                 original_label=emotion, gender=None, text_id=utterance,
                 extra={"language": language})


def _emotion_dir(path: Path) -> Path:
    return path.parent.parent if path.parent.name.lower() in SUBSETS else path.parent


def _with_text(entry: Entry, transcripts: dict) -> Entry:
    """Add the transcript line from `<speaker>/<speaker>.txt` when the release has it."""
    speaker_dir = _emotion_dir(entry.path).parent
    if speaker_dir not in transcripts:
        transcripts[speaker_dir] = _read_transcript(speaker_dir)
    text = transcripts[speaker_dir].get(entry.utt_id)
    return replace(entry, extra={**entry.extra, "text": text}) if text else entry


def _read_transcript(speaker_dir: Path) -> dict[str, str]:
    """utterance id -> text from the tab-separated `<speaker>.txt` (id, text, emotion)."""
    txt = find_child(speaker_dir, f"{speaker_dir.name}.txt")
    if txt is None or not txt.is_file():
        return {}
    try:
        raw = txt.read_bytes()
    except OSError:
        return {}
    out = {}
    for line in _decode(raw).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and NAME_RE.match(parts[0].strip()):
            out[parts[0].strip()] = parts[1].strip()
    return out


def _decode(raw: bytes) -> str:
    # Lenient about the encoding (the Mandarin transcripts are Chinese text): a transcript
    # that is not UTF-8 must cost its text, not the run.
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16", errors="replace")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace")
