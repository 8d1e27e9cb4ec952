"""The shard schema, shared by render (which writes shards), dataset (train, evaluate, crossval and export
read them), model_card and report: where shards live, their columns, the render settings in their metadata,
and the writer.

Layout: <root>/<corpus>-NNNNN.parquet, every rendered clip whatever its split (the split is joined at load
time), so adding a corpus adds shards and leaves the others as they are. Columns: BASE_FIELDS, plus one
float32 list column x_<kind> per extra feature array (its shape in the metadata's extras_shapes). Metadata
under META_KEY: JSON of the settings the shards were rendered with (labels, channels, image shape, ...).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import UserError
from pipeline.paths import SHARDS

META_KEY = b"ser"

BASE_FIELDS = [
    ("name", pa.string()), ("image", pa.binary()), ("item_id", pa.string()), ("utt_id", pa.string()),
    ("corpus", pa.string()), ("speaker", pa.string()), ("gender", pa.string()), ("text_id", pa.string()),
    ("label", pa.string()), ("augmented", pa.bool_()), ("augmentation", pa.string()),
    ("source_path", pa.string()),
]


def shard_path(root: Path, corpus: str, index: int) -> Path:
    return Path(root) / f"{corpus}-{index:05d}.parquet"


def shard_files(root: Path = SHARDS) -> list[Path]:
    """Every shard. Shards hold every rendered clip, whatever its split: the split is joined at load time,
    so a new fold or split seed never re-renders anything (render's input does not change)."""
    files = sorted(Path(root).glob("*.parquet"))
    if not files:
        raise UserError(f"no shards in {root}: run the render stage first (dvc repro render)")
    return files


class ShardWriter:
    """Streams the rows of one corpus into numbered shards of at most `shard_rows` rows.

    Rows go out in row groups of ROW_GROUP, so memory stays flat whatever the shard size (a row with its
    extras is ~60 KB). A shard is written to a hidden temp file and renamed once complete: an interrupted
    run never leaves a half shard under a real name.
    """

    ROW_GROUP = 256

    def __init__(self, root: Path, shard_rows: int, metadata: dict):
        self.root, self.shard_rows, self.metadata = root, shard_rows, metadata
        self.key: tuple | None = None
        self.rows: list[dict] = []
        self.index = 0  # shard number within the current key
        self.in_shard = 0  # rows added to the open shard
        self.written: list[Path] = []
        self.shapes: dict[str, list[int]] = {}
        self._writer: pq.ParquetWriter | None = None
        self._path = self._tmp = None

    def add(self, key: tuple, row: dict) -> None:
        if key != self.key:
            self.flush()
            self.key, self.index = key, 0
        self.rows.append(row)
        self.in_shard += 1
        if len(self.rows) >= self.ROW_GROUP:
            self._write_rows()
        if self.in_shard >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        """Finish the open shard under its real name."""
        self._write_rows()
        if self._writer is None:
            return
        self._writer.close()
        os.replace(self._tmp, self._path)
        self.written.append(self._path)
        self._writer = None
        self.index += 1
        self.in_shard = 0

    def abort(self) -> None:
        """Drop the open shard (an error or interrupt mid-run)."""
        if self._writer is not None:
            self._writer.close()
            self._tmp.unlink(missing_ok=True)
            self._writer = None

    def _write_rows(self) -> None:
        if not self.rows:
            return
        table = self._table(self.rows)
        if self._writer is None:
            (corpus,) = self.key
            self._path = shard_path(self.root, corpus, self.index)
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self._path.with_name(f".{self._path.name}.tmp")
            self._writer = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
        self._writer.write_table(table)
        self.rows = []

    def _table(self, rows: list[dict]) -> pa.Table:
        fields = list(BASE_FIELDS)
        columns = {name: [r.get(name) for r in rows] for name, _ in BASE_FIELDS}
        for key in sorted(k for k in rows[0] if k.startswith("x_")):
            self.shapes[key[2:]] = list(rows[0][key].shape)
            fields.append((key, pa.list_(pa.float32())))
            columns[key] = [r[key].ravel() for r in rows]
        meta = dict(self.metadata, extras_shapes=self.shapes)
        schema = pa.schema(fields, metadata={META_KEY: json.dumps(meta).encode()})
        return pa.table({name: pa.array(columns[name], type=t) for name, t in fields}, schema=schema)


def read_metadata(shard: Path) -> dict:
    """The render settings a shard was made with (image shape, labels, extras shapes)."""
    meta = pq.read_schema(shard).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))
