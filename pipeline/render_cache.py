"""The render cache: each clip's expensive work (the PNG bytes, each feature array) keyed by content, so adding a
corpus, a fold, a balance plan or a model computes only what is new (docs/render-cache.md).

An entry's key is a hash of everything its bytes depend on:
  - the source audio's content hash (the manifest's sha256 of the file) and the augmentation record of a
    training copy (the render plan's JSON; '' for an original);
  - the audio settings that output depends on (features.audio_depends_on: the window length only for outputs
    that see the window) and its own feature settings (features.DEPENDS_ON[kind]), never another output's;
  - the code and the libraries that compute it (CODE: the source of speech.py, audio.py, augment.py and
    features.py,
    and the installed versions of LIBRARIES), so an edit or an upgrade never serves stale bytes;
  - FORMAT, this module's storage format.
So two corpora holding the same recording share its entries, and a changed image setting misses only the
images. Nothing else (names, labels, speakers, splits) enters a key: those are metadata, joined when shards are
written.

Storage: data/cache/render/ (git- and DVC-ignored), Parquet files of at most PART_ROWS entries (columns key, kind,
data = PNG or float32 bytes, shape), in row groups of ROW_GROUP. A render run appends the entries it computed as
new files (a few per run, never one per clip), each written under a hidden temporary name and renamed when
complete, so a reader never sees half a file; an interrupted run keeps the parts it finished. Lookups read the
key column of every file once, then the row groups that hold what the run needs, in plan order. When more than
MAX_FILES files have accumulated, the next run merges them into a few. Deleting the folder is always safe: it
only costs the recomputation.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, OrderedDict
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.paths import RENDER_CACHE

CACHE_DIR = RENDER_CACHE
FORMAT = 1
CODE = ("speech.py", "audio.py", "augment.py", "features.py")  # pipeline modules whose code makes an entry's bytes
LIBRARIES = ("numpy", "scipy", "soxr", "soundfile", "audiomentations", "librosa", "numba", "pillow", "matplotlib",
             "opensmile")
PART_ROWS = 4096  # entries per file
ROW_GROUP = 256  # entries per row group: a read of one is a few MB at most (ComParE is 25 KB per clip)
MAX_FILES = 32  # more files than this are merged by the next run
SCHEMA = pa.schema([("key", pa.string()), ("kind", pa.string()), ("data", pa.binary()),
                    ("shape", pa.list_(pa.int32()))])


def code_fingerprint() -> str:
    """Hash of the code (CODE) and library versions (LIBRARIES) that compute the cached bytes."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in CODE:
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    for lib in LIBRARIES:
        try:
            version = metadata.version(lib)
        except metadata.PackageNotFoundError:
            version = "absent"
        h.update(f"{lib}=={version}\0".encode())
    return h.hexdigest()


def _canonical_augmentation(record) -> str:
    if record is None or (isinstance(record, float) and np.isnan(record)) or not str(record).strip():
        return ""
    return json.dumps(json.loads(record), sort_keys=True)


def entry_key(kind: str, source_hash: str, augmentation, acfg, fcfg, code: str) -> str:
    """The cache key of output `kind` of one plan item (see the module docstring for what it holds)."""
    from pipeline.features import DEPENDS_ON, audio_depends_on

    blob = {"format": FORMAT, "code": code, "kind": kind, "source": str(source_hash),
            "augmentation": _canonical_augmentation(augmentation),
            "audio": {f: getattr(acfg, f) for f in audio_depends_on(kind, fcfg)},
            "features": {f: getattr(fcfg, f) for f in DEPENDS_ON.get(kind, ())}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:40]


def encode(kind: str, value) -> tuple[bytes, list[int] | None]:
    if kind == "image":
        return bytes(value), None
    arr = np.ascontiguousarray(value, dtype=np.float32)
    return arr.tobytes(), [int(v) for v in arr.shape]


def decode(kind: str, data: bytes, shape):
    if kind == "image":
        return data
    return np.frombuffer(data, dtype=np.float32).reshape(shape).copy()


class PartWriter:
    """Entries into new files of `root`: at most PART_ROWS per file, row groups of ROW_GROUP, each file written
    under a hidden temporary name and renamed when complete."""

    def __init__(self, root: Path, run: str):
        self.root, self.run = Path(root), run
        self.files: list[Path] = []
        self._rows: list[tuple] = []
        self._writer: pq.ParquetWriter | None = None
        self._in_part = 0
        self._path = self._tmp = None

    def add(self, key: str, kind: str, data: bytes, shape) -> None:
        self._rows.append((key, kind, data, shape))
        self._in_part += 1
        if len(self._rows) >= ROW_GROUP:
            self._write_rows()
        if self._in_part >= PART_ROWS:
            self.finish()

    def finish(self) -> None:
        """Complete the open file under its real name."""
        self._write_rows()
        if self._writer is None:
            return
        self._writer.close()
        os.replace(self._tmp, self._path)
        self.files.append(self._path)
        self._writer = None
        self._in_part = 0

    def _write_rows(self) -> None:
        if not self._rows:
            return
        key, kind, data, shape = zip(*self._rows)
        table = pa.table({"key": list(key), "kind": list(kind), "data": list(data), "shape": list(shape)},
                         schema=SCHEMA)
        if self._writer is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._path = self.root / f"{self.run}-{len(self.files):03d}.parquet"
            self._tmp = self._path.with_name(f".{self._path.name}.tmp")
            self._writer = pq.ParquetWriter(self._tmp, SCHEMA, compression="zstd")
        self._writer.write_table(table, row_group_size=ROW_GROUP)
        self._rows = []


def _run_name(tag: str = "") -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.time_ns() % 10**6:06d}{tag}"


class RenderCache:
    """Lookups into, and new entries for, the cache folder `root` (see the module docstring)."""

    def __init__(self, root: Path = CACHE_DIR, cached_row_groups: int = 16):
        self.root = Path(root)
        self.files: list[Path] = sorted(self.root.glob("*.parquet")) if self.root.is_dir() else []
        self.index: dict[str, tuple[int, int]] = {}  # key -> (file number, row)
        self._group_rows: list[np.ndarray] = []  # per file: the first row of each row group, and the end
        for i, path in enumerate(self.files):
            keys = pq.read_table(path, columns=["key"]).column("key").to_pylist()
            for row, key in enumerate(keys):
                self.index.setdefault(key, (i, row))
            meta = pq.ParquetFile(path).metadata
            self._group_rows.append(np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]))
        self._groups: OrderedDict = OrderedDict()  # (file, row group) -> (data list, shape list), LRU
        self._capacity = cached_row_groups
        self._writer = PartWriter(self.root, _run_name())
        self.new: dict[str, tuple[bytes, list | None]] = {}  # this run's entries to be looked up again
        self.added: set[str] = set()
        self.written = Counter()  # kind -> entries this run added

    def __contains__(self, key: str) -> bool:
        return key in self.index or key in self.added

    def get(self, key: str, kind: str):
        if key in self.new:
            return decode(kind, *self.new[key])
        i, row = self.index[key]
        group = int(np.searchsorted(self._group_rows[i], row, side="right") - 1)
        cached = self._groups.get((i, group))
        if cached is None:
            table = pq.ParquetFile(self.files[i]).read_row_group(group, columns=["data", "shape"])
            cached = (table.column("data").to_pylist(), table.column("shape").to_pylist())
            self._groups[(i, group)] = cached
            while len(self._groups) > self._capacity:
                self._groups.popitem(last=False)
        else:
            self._groups.move_to_end((i, group))
        offset = row - int(self._group_rows[i][group])
        return decode(kind, cached[0][offset], cached[1][offset])

    def put(self, key: str, kind: str, value, keep: bool = False) -> None:
        """Add an entry to this run's new files; `keep` also holds it in memory for a later get() (release())."""
        if key in self:
            return
        data, shape = encode(kind, value)
        if keep:
            self.new[key] = (data, shape)
        self.added.add(key)
        self._writer.add(key, kind, data, shape)
        self.written[kind] += 1

    def release(self, key: str) -> None:
        """This run needs `key` no more: drop its in-memory copy (it is in the files being written)."""
        self.new.pop(key, None)

    def close(self) -> None:
        """Finish this run's files (what was computed so far stays, interrupted or not); merge the folder when
        it holds more than MAX_FILES files."""
        self._writer.finish()
        if len(list(self.root.glob("*.parquet"))) > MAX_FILES:
            compact(self.root)

    def stats(self) -> dict:
        files = sorted(self.root.glob("*.parquet")) if self.root.is_dir() else []
        return {"dir": str(self.root), "files": len(files), "entries": len(self.index) + len(self.added),
                "megabytes": round(sum(f.stat().st_size for f in files) / 2**20, 1)}


def compact(root: Path = CACHE_DIR) -> list[Path]:
    """Merge every cache file of `root` into as few as PART_ROWS allows (one copy of each key), streaming row
    group by row group; the old files are removed once the new ones are complete."""
    root = Path(root)
    old = sorted(root.glob("*.parquet"))
    writer = PartWriter(root, _run_name("-merged"))
    seen: set[str] = set()
    for path in old:
        f = pq.ParquetFile(path)
        for g in range(f.metadata.num_row_groups):
            table = f.read_row_group(g)
            for key, kind, data, shape in zip(*(table.column(c).to_pylist() for c in ("key", "kind", "data", "shape"))):
                if key not in seen:
                    seen.add(key)
                    writer.add(key, kind, data, shape)
    writer.finish()
    for path in old:
        path.unlink(missing_ok=True)
    return writer.files
