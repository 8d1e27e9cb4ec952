"""What `data.raw_dir` holds, links followed: the corpora to ingest, or nothing (then the demo corpus).

Shared by ingest (which corpora), the demo stage (synthesise only when raw_dir holds nothing) and the
`inventory` stage. DVC does not look through symbolic links when it hashes a folder (a linked corpus,
`data/raw/emodb -> ../../shared/corpora/emodb`, hashes like an empty folder), so the inventory stage
(always run, milliseconds) lists every file under raw_dir with its size and modification time, and the
demo and ingest stages depend on that list: adding, removing or changing a corpus, linked or not,
re-runs them; nothing else does.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.errors import ParamsError, UserError

log = logging.getLogger("pipeline.raw_dir")

INVENTORY = Path("data/processed/raw_inventory.json")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aif", ".aiff", ".mp3")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")


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
    value = data.get("raw_dir", "data/raw") if isinstance(data, dict) else "data/raw"
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


def inventory(raw_dir: Path) -> dict:
    """Per visible top-level entry: kind, link target, file count, bytes and a digest of every file's
    relative path, size and modification time (content is not read: that is ingest's job)."""
    raw = scan(raw_dir)
    entries = []
    for kind, paths in (("folder", raw.folders), ("empty folder", raw.empty_folders),
                        ("broken link", raw.broken_links), ("audio file", raw.audio_files),
                        ("archive", raw.archives), ("other file", raw.other_files)):
        for path in paths:
            entry = {"name": path.name, "kind": kind}
            if path.is_symlink():
                entry["link"] = os.readlink(path)
            if kind == "folder":
                digest, n, size = hashlib.sha256(), 0, 0
                for f in files_under(path):
                    st = f.stat() if f.exists() else None  # a broken link inside: listed, ingest quarantines it
                    size_ns = (st.st_size, st.st_mtime_ns) if st else (-1, -1)
                    digest.update(f"{f.relative_to(path).as_posix()}\t{size_ns[0]}\t{size_ns[1]}\n".encode())
                    n, size = n + 1, size + max(size_ns[0], 0)
                entry.update(files=n, bytes=size, digest=digest.hexdigest())
            elif kind != "broken link":
                st = path.stat()
                entry.update(bytes=st.st_size, mtime_ns=st.st_mtime_ns)
            entries.append(entry)
    return {"raw_dir": str(raw_dir), "holds_nothing": raw.holds_nothing,
            "entries": sorted(entries, key=lambda e: e["name"])}


def main(argv=None) -> None:
    from pipeline.io import write_json
    from pipeline.params import load

    argparse.ArgumentParser(prog="python -m pipeline.raw_dir", description=__doc__).parse_args(argv)
    params = load()
    raw_dir = raw_dir_from_params(params)
    require(raw_dir, (params.get("data") or {}).get("corpora") or [])
    listing = inventory(raw_dir)
    write_json(INVENTORY, listing)
    folders = [e for e in listing["entries"] if e["kind"] == "folder"]
    if listing["holds_nothing"]:
        log.info("%s holds no corpus: the demo corpus will be used", raw_dir)
    else:
        log.info("%s: %s", raw_dir, ", ".join(f"{e['name']} ({e['files']} files)" for e in folders) or "no folder")


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
