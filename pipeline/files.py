"""Finding files: the walker every corpus adapter uses, and what `data.raw_dir` holds.

Library code (no stage): ingest (which corpora), the demo stage (synthesise only when raw_dir holds nothing),
the corpus adapters (walk, is_hidden) and the inventory stage (pipeline/inventory.py) import it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.errors import ParamsError, UserError
from pipeline.paths import RAW_DIR

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")


def is_audio(path: Path) -> bool:
    """An audio file by its name (macOS's ._ resource forks are not)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith("._")


def is_hidden(name: str) -> bool:
    """Dot files and folders (.gitkeep, .DS_Store, .dvc) and macOS's __MACOSX are never data."""
    return name.startswith(".") or name == "__MACOSX"


def walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """os.walk with links followed (a linked corpus, or linked folders inside one), each real folder
    visited once, so a link cycle or two links to one folder cannot loop or count files twice.
    Hidden folders are skipped; both lists come sorted, so every walk is in the same order."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        yield Path(dirpath), dirnames, sorted(f for f in filenames if not f.startswith("."))


def files_under(root: Path) -> Iterator[Path]:
    """Every visible file under root (links followed, cycle-safe), in a stable order."""
    for dirpath, _, filenames in walk(root):
        for name in filenames:
            yield dirpath / name


def raw_dir_from_params(params: dict) -> Path:
    data = params.get("data") or {}
    value = data.get("raw_dir", str(RAW_DIR)) if isinstance(data, dict) else str(RAW_DIR)
    if not isinstance(value, str) or not value.strip():
        raise ParamsError("data.raw_dir", f"must be a folder path, got {value!r}")
    return Path(value)


@dataclass
class RawDir:
    """The visible entries of raw_dir, by kind."""

    path: Path
    folders: list[Path] = field(default_factory=list)  # non-empty folders (or links to folders): corpora
    empty_folders: list[Path] = field(default_factory=list)
    broken_links: list[Path] = field(default_factory=list)
    audio_files: list[Path] = field(default_factory=list)  # loose audio files: not inside a corpus folder
    archives: list[Path] = field(default_factory=list)
    other_files: list[Path] = field(default_factory=list)  # README, notes: ignored

    @property
    def holds_nothing(self) -> bool:
        """True when ingest will use the demo corpus (unless data.corpora names corpora)."""
        return not (self.folders or self.broken_links or self.audio_files or self.archives)


def require(raw_dir: Path, corpora: list[str]) -> None:
    """With no data.corpora, raw_dir must exist (empty for the demo corpus): a missing one is more often a run
    in the wrong place, e.g. a queued experiment's copy of the repository, than a wish for the demo."""
    if not corpora and not Path(raw_dir).is_dir():
        raise UserError(f"data.raw_dir {raw_dir} is not a folder: create it (empty: the demo corpus is used; "
                        f"`make repro` does) or set data.raw_dir. A queued or --temp `dvc exp run` works in a copy "
                        f"of the repository without git-ignored folders: pass `-C {raw_dir}` or set data.raw_dir "
                        f"to an absolute path")


def scan(raw_dir: Path) -> RawDir:
    raw_dir = Path(raw_dir)
    out = RawDir(raw_dir)
    if not raw_dir.is_dir():
        return out
    for child in sorted(raw_dir.iterdir()):
        if is_hidden(child.name):
            continue
        if child.is_symlink() and not child.exists():
            out.broken_links.append(child)
        elif child.is_dir():
            has_files = next(files_under(child), None) is not None
            (out.folders if has_files else out.empty_folders).append(child)
        elif child.suffix.lower() in AUDIO_EXTENSIONS:
            out.audio_files.append(child)
        elif child.name.lower().endswith(ARCHIVE_SUFFIXES):
            out.archives.append(child)
        else:
            out.other_files.append(child)
    return out
