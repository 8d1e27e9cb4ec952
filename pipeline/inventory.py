"""Stage inventory: what `data.raw_dir` holds, links followed, written to data/processed/raw_inventory.json.

DVC does not look through symbolic links when it hashes a folder (a linked corpus,
`data/raw/emodb -> ../../shared/corpora/emodb`, hashes like an empty folder), so this stage (always run,
milliseconds) lists every file under raw_dir with its size and modification time, and the demo and ingest
stages depend on that list: adding, removing or changing a corpus, linked or not, re-runs them; nothing else
does. Finding the files is library code, pipeline/files.py.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
from pathlib import Path

from pipeline.files import files_under, raw_dir_from_params, require, scan
from pipeline.paths import INVENTORY

log = logging.getLogger("pipeline.inventory")


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

    argparse.ArgumentParser(prog="python -m pipeline inventory", description=__doc__).parse_args(argv)
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
