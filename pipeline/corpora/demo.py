"""Demo: the synthesised corpus that pipeline/demo_corpus/ writes (eSpeak NG voices as speakers).

Layout: `<root>/<voice_id>/<voice_id>_<emotion>_<NN>.wav`, plus `sentences.txt` (id<TAB>text) and
`voices.txt` (voice_id<TAB>espeak<TAB>gender). Emotions are the 7 target labels, spelled as the targets.
Gender comes from voices.txt, else from the synthesiser's voice table; a voice known to neither has none.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from pipeline import TARGET_LABELS
from pipeline.corpora.base import (Entry, FirstSeen, Item, Rejected, child_dirs, child_files, detect_layout,
                                   resolve_options, unwrap, walk_audio)

NAME = "demo"
DISPLAY = "DEMO"

LABEL_MAP = {label: label for label in TARGET_LABELS}
DEFAULT_OPTIONS: dict = {}

NAME_RE = re.compile(r"^(?P<voice>[a-z0-9]+)_(?P<emotion>[a-z]+)_(?P<sentence>\d{2})$")
FORMAT = "<voice>_<emotion>_<NN>.wav in a folder named <voice>"
SENTENCES_FILE = "sentences.txt"
VOICES_FILE = "voices.txt"


def detect(root: Path) -> bool:
    return detect_layout(root, _looks_like_root)


def prepare(root: Path, options: dict) -> Iterator[Item]:
    resolve_options(NAME, DEFAULT_OPTIONS, options)
    return _items(unwrap(Path(root), _looks_like_root))


def _looks_like_root(folder: Path) -> bool:
    if not (folder / SENTENCES_FILE).is_file():
        return False
    return any(NAME_RE.match(f.stem) and f.stem.split("_")[0] == d.name
               for d in child_dirs(folder) for f in child_files(d))


def _genders(root: Path) -> dict[str, str]:
    """voice_id -> gender: the synthesiser's table, overridden by the corpus's own voices.txt."""
    out = {}
    try:
        from pipeline.demo_corpus import VOICES

        out.update({v.voice_id: v.gender for v in VOICES})
    except Exception:  # the table is a convenience; voices.txt is what the corpus says about itself
        pass
    path = root / VOICES_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) >= 3 and fields[2] in ("female", "male"):
                out[fields[0]] = fields[2]
    return out


def _sentence_ids(root: Path) -> set[str] | None:
    path = root / SENTENCES_FILE
    if not path.is_file():
        return None
    return {line.split("\t", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line}


def _items(root: Path) -> Iterator[Item]:
    genders = _genders(root)
    sentences = _sentence_ids(root)
    seen = FirstSeen(NAME, root)
    for path in walk_audio(root):
        m = NAME_RE.match(path.stem)
        if not m:
            yield Rejected(NAME, path, f"name does not match {FORMAT}")
            continue
        voice, emotion, sentence = m.group("voice", "emotion", "sentence")
        if path.parent.name != voice:
            yield Rejected(NAME, path, f"voice {voice} in the name but the file is in {path.parent.name}/")
            continue
        if sentences is not None and sentence not in sentences:
            yield Rejected(NAME, path, f"sentence {sentence} is not listed in {SENTENCES_FILE}")
            continue
        # an emotion outside LABEL_MAP still comes back as an Entry: ingest quarantines unknown labels
        entry = Entry(corpus=NAME, path=path, utt_id=path.stem, speaker=f"{NAME}:{voice}",
                      original_label=emotion, gender=genders.get(voice), text_id=sentence)
        yield seen.duplicate(entry.utt_id, path) or entry
