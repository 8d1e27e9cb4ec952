"""What every corpus adapter returns, and helpers for the layout quirks the adapters' docstrings list.

An adapter module exposes:
    NAME: str                      corpus name used in params and speaker ids ("ravdess")
    DISPLAY: str                   name used in image file names ("RAVDESS")
    LABEL_MAP: dict[str, str|None] original label -> target label (None = dropped by default)
    DEFAULT_OPTIONS: dict          adapter options overridable in params `data.options.<name>`
    def read_options(options: dict | None) -> dict   optional: the options checked (types, values) and merged
        with DEFAULT_OPTIONS; ingest checks every adapter's with the rest of params.yaml (read_options below)
    def detect(root: Path) -> bool       does this folder look like the corpus?
    def prepare(root: Path, options: dict) -> Iterator[Entry | Rejected]
        one Entry per audio file whose name parses, one Rejected per audio file that does not
        (never guess a label). Files excluded by design (RAVDESS song, ESD Mandarin) are
        Excluded, so that every file found is accounted for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.files import AUDIO_EXTENSIONS, is_audio, is_hidden, walk  # noqa: F401 (is_audio: adapters use it)



@dataclass(frozen=True)
class Entry:
    """One utterance whose name parsed. `speaker` is corpus-prefixed ("tess:OAF")."""

    corpus: str
    path: Path
    utt_id: str  # unique within the corpus, used in image names (file stem unless that collides)
    speaker: str
    original_label: str  # lower-case label as the corpus names it ("calm", "ps", "w")
    gender: str | None = None  # "female" / "male" / None when the corpus does not document it
    text_id: str | None = None  # sentence / word id
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Rejected:
    """An audio file whose name does not parse: quarantined with the reason."""

    corpus: str
    path: Path
    reason: str


@dataclass(frozen=True)
class Excluded:
    """An audio file left out by an adapter option (song, other language, selected duplicates)."""

    corpus: str
    path: Path
    reason: str


Item = Entry | Rejected | Excluded


def walk_audio(root: Path) -> Iterator[Path]:
    """Every audio file under root, linked folders followed (each real folder once: no link cycle or
    second link to a folder counts a file twice), sorted so that output order is deterministic."""
    found = []
    for dirpath, _, filenames in walk(root):
        found += [dirpath / name for name in filenames if is_audio(dirpath / name)]
    return iter(sorted(found))


def find_child(parent: Path, name: str) -> Path | None:
    """Child of `parent` whose name matches `name` case-insensitively."""
    if not parent.is_dir():
        return None
    low = name.lower()
    for child in sorted(parent.iterdir()):
        if child.name.lower() == low:
            return child
    return None


def unwrap(root: Path, looks_like_root) -> Path:
    """Accept the corpus with or without extra wrapping folders (archives differ).

    Returns `root` if `looks_like_root(root)`, else the first descendant (up to two levels
    down) for which it holds; falls back to `root`.
    """
    if looks_like_root(root):
        return root
    frontier = [root]
    for _ in range(2):
        nxt = []
        for d in frontier:
            if not d.is_dir():
                continue
            for child in sorted(d.iterdir()):
                if child.is_dir() and not is_hidden(child.name):
                    if looks_like_root(child):
                        return child
                    nxt.append(child)
        frontier = nxt
    return root


def count(items: Iterable[Item]) -> dict[str, int]:
    out = {"entries": 0, "rejected": 0, "excluded": 0}
    for it in items:
        key = {Entry: "entries", Rejected: "rejected", Excluded: "excluded"}[type(it)]
        out[key] += 1
    return out


# --- Helpers shared by the adapters ---------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_id(text: str) -> str:
    """`text` made safe in a file name (letters, digits, - and _): other runs become '-'."""
    return _UNSAFE.sub("-", text).strip("-") or "_"


def relative(path: Path, root: Path) -> str:
    """`path` relative to `root` where it lies under it, for readable reasons."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def child_dirs(parent: Path) -> list[Path]:
    """Visible sub-folders of `parent`, sorted (none when it is not a folder)."""
    if not parent.is_dir():
        return []
    return [c for c in sorted(parent.iterdir())
            if c.is_dir() and not is_hidden(c.name)]


def child_files(parent: Path) -> Iterator[Path]:
    """Audio files directly in `parent`."""
    if parent.is_dir():
        yield from (c for c in sorted(parent.iterdir()) if c.is_file() and is_audio(c))


def detect_layout(root: Path, looks_like_root) -> bool:
    """detect(): `root`, or a folder one or two levels down (archives wrap), passes the test."""
    root = Path(root)
    return root.is_dir() and bool(looks_like_root(unwrap(root, looks_like_root)))


def resolve_options(name: str, defaults: dict, options: dict | None) -> dict:
    """The adapter's defaults overridden by `options`; an unknown key is a params error."""
    from pipeline.params import check_keys

    options = dict(options or {})
    check_keys(options, f"data.options.{name}", tuple(defaults), what="option")
    return {**defaults, **options}


def read_options(adapter, options: dict | None) -> dict:
    """params `data.options.<name>` of an adapter, checked: its own read_options when it has one, else its
    DEFAULT_OPTIONS overridden by the known keys (an adapter without options takes none)."""
    own = getattr(adapter, "read_options", None)
    return own(options) if own else resolve_options(adapter.NAME, adapter.DEFAULT_OPTIONS, options)


class FirstSeen:
    """Releases ship second copies of the same files (Kaggle nests the whole corpus twice):
    the first copy of a recording counts, later ones come back as Excluded."""

    def __init__(self, corpus: str, root: Path):
        self.corpus, self.root, self.first = corpus, Path(root), {}

    def duplicate(self, key, path: Path) -> Excluded | None:
        first = self.first.setdefault(key, path)
        if first == path:
            return None
        where = relative(first, self.root)
        return Excluded(self.corpus, path, f"second copy of {where} (same recording, counted once)")
