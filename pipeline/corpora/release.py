"""Is this copy of a corpus the official release? The files ingest found, compared with reference checksums.

Published SER figures are hard to compare partly because copies of a corpus differ (re-uploads re-encode,
resample, cut, overwrite, drop or duplicate files). `checksums/<corpus>.tsv` lists the official release: a `#`
line saying where the list comes from, then `path sha256 bytes` (tab-separated), paths relative to the corpus
root in its official layout (`wav/03a01Fa.wav`, `Actor_01/03-01-...wav`). `check_release` takes the sha256 ingest
computed for every audio file it found (nothing is read again) and sorts each file into:

    matching   at an official path, same content
    differing  at an official path, other content (re-encoded, resampled, cut, overwritten)
    moved      not at an official path, but byte-identical to an official file found nowhere else (renamed, moved)
    copies     byte-identical to an official file that is already counted (second copies in a re-upload)
    extra      neither the path nor the content is in the release
    missing    official files found neither at their path nor by content

so that official = matching + differing + moved + missing and found = matching + differing + moved + copies + extra.
Only audio files take part: ingest sees nothing else (SAVEE's Info.txt is not checked).

Where the reference paths start is found from the data, not from the folder's name: each found file votes for
the folder under the corpus root from which its path ends in an official path (case-insensitive, as the
adapters read names), and the folder with the most votes wins. One or two wrapping folders, a renamed top
folder or a second nested copy therefore do not matter.

A verdict never blocks a run: ingest reports it (summary table, metrics/ingest.json, the experiment report).
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

from pipeline.corpora.base import is_audio

CHECKSUMS_DIR = Path(__file__).with_name("checksums")
SAMPLE = 5  # paths listed per category in metrics/ingest.json
NO_REFERENCE = "no reference checksums"


@dataclass(frozen=True)
class Reference:
    """One corpus' official release: official path -> sha256 (audio files only)."""

    corpus: str
    source: str  # the list's `#` line: where it comes from
    files: dict[str, str]


def load_reference(corpus: str, directory: Path | str | None = None) -> Reference | None:
    """The reference list of `corpus` in `directory` (default CHECKSUMS_DIR), or None when there is none
    (esd, demo)."""
    path = Path(directory or CHECKSUMS_DIR) / f"{corpus}.tsv"
    if not path.is_file():
        return None
    source, files = "", {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#"):
            source = source or line.lstrip("# ").strip()
            continue
        cells = line.split("\t")
        if not line.strip() or cells[:2] == ["path", "sha256"]:
            continue
        if len(cells) < 2 or len(cells[1]) != 64:
            raise ValueError(f"{path}:{number}: expected `path<TAB>sha256<TAB>bytes`, got {line[:80]!r}")
        if is_audio(PurePosixPath(cells[0])):
            files[cells[0]] = cells[1].lower()
    return Reference(corpus, source, files)


@dataclass
class ReleaseCheck:
    corpus: str
    verdict: str
    status: str  # official | modified | partial | unofficial | unknown (no reference)
    source: str = ""
    anchor: str = ""  # folder the reference paths are relative to, relative to the corpus root ("" = the root)
    official: int = 0
    matching: list[str] = field(default_factory=list)  # found paths (relative to the corpus root)
    differing: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (found path, official path)
    copies: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # official paths

    def summary(self, sample: int = SAMPLE) -> dict:
        """Counts, verdict and the first `sample` paths of each category (for metrics/ingest.json)."""
        out = {"verdict": self.verdict, "status": self.status}
        if self.status == "unknown":
            return out
        out.update(source=self.source, anchor=self.anchor, official=self.official)
        out.update({k: len(getattr(self, k)) for k in ("matching", "differing", "moved", "copies", "extra",
                                                      "missing")})
        out["examples"] = {}
        for key in ("differing", "moved", "copies", "extra", "missing"):
            items = getattr(self, key)[:sample]
            if items:  # moved and copies: "found path -> official path"
                out["examples"][key] = [" -> ".join(i) if isinstance(i, tuple) else i for i in items]
        return out


def check_release(corpus: str, root: Path | str, files: Iterable[tuple[Path | str, str | None]],
                  reference_dir: Path | str | None = None) -> ReleaseCheck:
    """Compare `files` ((path, sha256) of every audio file found under `root`) with the official release.

    Pure apart from reading the reference list. A file whose hash is None (unreadable) counts as differing
    when it sits at an official path, as extra otherwise.
    """
    reference = load_reference(corpus, reference_dir)
    if reference is None or not reference.files:
        return ReleaseCheck(corpus, NO_REFERENCE, "unknown")
    official = reference.files
    by_lower = {p.lower(): p for p in official}
    found = sorted((_parts(path, root), digest) for path, digest in files)

    anchor = _anchor([parts for parts, _ in found], by_lower)
    at_path: dict[str, tuple[str, str | None]] = {}  # official path -> (found path, hash)
    elsewhere: list[tuple[str, str | None]] = []
    for parts, digest in found:
        rel = "/".join(parts)
        key = "/".join(parts[len(anchor):]).lower() if parts[:len(anchor)] == anchor else None
        ref = by_lower.get(key) if key else None
        if ref is not None and ref not in at_path:
            at_path[ref] = (rel, digest)
        else:
            elsewhere.append((rel, digest))

    check = ReleaseCheck(corpus, "", "", source=reference.source, anchor="/".join(anchor), official=len(official))
    present = set()
    for ref, (rel, digest) in at_path.items():
        if digest == official[ref]:
            check.matching.append(rel)
            present.add(ref)
        else:
            check.differing.append(rel)
    by_hash: dict[str, list[str]] = {}
    for ref in sorted(official):
        by_hash.setdefault(official[ref], []).append(ref)
    claimed = set(at_path)
    for rel, digest in elsewhere:
        candidates = by_hash.get(digest, [])
        free = [ref for ref in candidates if ref not in claimed]
        if free:
            check.moved.append((rel, free[0]))
            claimed.add(free[0])
        elif candidates:
            check.copies.append((rel, candidates[0]))
        else:
            check.extra.append(rel)
    check.missing = sorted(ref for ref in official if ref not in claimed)
    check.status, check.verdict = _verdict(check)
    return check


def _parts(path: Path | str, root: Path | str) -> tuple[str, ...]:
    """`path` relative to `root` as path components (the path as given when it is not under root)."""
    rel = os.path.relpath(path, root)
    if rel.startswith(os.pardir):
        rel = str(path)
    return PurePosixPath(Path(rel).as_posix()).parts


def _anchor(found: list[tuple[str, ...]], by_lower: dict[str, str]) -> tuple[str, ...]:
    """The folder (as components under the root) from which the most found paths are official paths;
    ties go to the shallower folder (a re-upload's nested second copy loses to the top one)."""
    votes: Counter = Counter()
    for parts in found:
        for k in range(len(parts)):
            if "/".join(parts[k:]).lower() in by_lower:
                votes[parts[:k]] += 1
    if not votes:
        return ()
    return min(votes, key=lambda prefix: (-votes[prefix], len(prefix), prefix))


def _verdict(c: ReleaseCheck) -> tuple[str, str]:
    n, found = c.official, len(c.matching) + len(c.moved)
    notes = []
    if c.moved:
        notes.append(f"{len(c.moved)} at other paths")
    if c.missing and found + len(c.differing):
        notes.append(f"{len(c.missing)} missing")
    if c.copies:
        notes.append(f"{_files(len(c.copies), 'extra copy', 'extra copies')} of official files")
    if c.extra:
        notes.append(f"{_files(len(c.extra))} not in the release")
    if c.differing:
        status, head = "modified", f"modified copy: {len(c.differing)} of {n} files differ from the official release"
    elif found == n:
        status, head = "official", f"official release, {n}/{n} files"
    elif found == 0:
        status, head = "unofficial", f"not the official release: none of its {n} files found (by path or content)"
    else:
        status, head = "partial", f"partial official release: {found}/{n} files"
    return status, head + ("; " + ", ".join(notes) if notes else "")


def _files(n: int, one: str = "file", many: str = "files") -> str:
    return f"{n} {one if n == 1 else many}"
