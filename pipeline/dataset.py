"""Training input: Parquet shards -> decoded, augmented, shuffled batches.

Backend-neutral (a keras.utils.PyDataset over numpy arrays, no tf.data), so the same pipeline feeds
Keras on TensorFlow, JAX or PyTorch. Shards are read one at a time and the PNGs decoded in worker
processes into one compact uint8 array (a 128x128x3 image is 48 KiB, so 16k images are 0.8 GB);
batches are then cut, converted to float and augmented on the fly, training split only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.errors import UserError

SHARDS = Path("data/processed/shards")
META_COLUMNS = ["name", "corpus", "speaker", "label", "augmented", "item_id", "utt_id", "source_path"]


@dataclass
class SplitData:
    x: np.ndarray  # uint8 images (N, H, W, C) or float32 features
    labels: np.ndarray  # str label per row
    meta: "object"  # pandas DataFrame with META_COLUMNS

    def __len__(self) -> int:
        return len(self.labels)


def shard_files(split: str, root: Path = SHARDS) -> list[Path]:
    files = sorted((root / split).glob("*.parquet"))
    if not files:
        raise UserError(f"no shards in {root / split}: run the render stage first (dvc repro render)")
    return files


def _decode(png: bytes) -> np.ndarray:
    from pipeline.features import decode_png

    arr = decode_png(png)
    return arr[..., None] if arr.ndim == 2 else arr


def _decode_many(pngs: list) -> np.ndarray:
    return np.stack([_decode(p) for p in pngs])


def load_split(split: str, input_kind: str = "image", root: Path = SHARDS, workers: int = 0) -> SplitData:
    """Read every shard of a split. input_kind: image | mfcc | vector | utterance."""
    import pandas as pd

    from pipeline.parallel import imap

    files = shard_files(split, root)
    column = "image" if input_kind == "image" else f"x_{input_kind}"
    xs, metas = [], []
    for f in files:
        schema = pq.read_schema(f)
        if column not in schema.names:
            raise UserError(f"{f} has no column {column!r}: model input {input_kind!r} needs "
                            f"features.extra to include {input_kind!r}; add it to params.yaml and re-run render")
        table = pq.read_table(f, columns=[column] + META_COLUMNS)
        metas.append(table.select(META_COLUMNS).to_pandas())
        if input_kind == "image":
            pngs = table.column("image").to_pylist()
            n = max(1, workers or 1)
            chunks = [pngs[i::n] for i in range(n)] if n > 1 else [pngs]
            parts = list(imap(_decode_many, chunks, n, desc=f"decode {split}", unit="chunk", chunksize=1))
            # undo the round-robin interleave so rows stay in shard order
            out = np.empty((len(pngs),) + parts[0].shape[1:], dtype=np.uint8)
            for i, part in enumerate(parts):
                out[i::n] = part
            xs.append(out)
        else:
            from pipeline.render import read_metadata

            shape = read_metadata(f).get("extras_shapes", {}).get(input_kind)
            flat = np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)
            xs.append(flat.reshape((len(flat),) + tuple(shape)) if shape else flat)
    meta = pd.concat(metas, ignore_index=True)
    x = np.concatenate(xs)
    if input_kind == "mfcc":
        x = x[..., None]  # (frames, n_mfcc, 1) for the 2-D CNN
    return SplitData(x=x, labels=meta["label"].to_numpy(), meta=meta)


@dataclass
class SpecAugmentConfig:
    time_shift: float = 0.1
    noise_std: float = 0.02
    specaugment: bool = False
    freq_masks: int = 2
    time_masks: int = 2
    max_mask: float = 0.1


def augment_images(x: np.ndarray, cfg: SpecAugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """On-the-fly spectrogram augmentation of a float batch (N, H, W, C) in 0..1: time shift, noise, masks."""
    n, h, w = x.shape[:3]
    if cfg.time_shift > 0:
        max_shift = int(round(cfg.time_shift * w))
        if max_shift:
            shifts = rng.integers(-max_shift, max_shift + 1, size=n)
            for i, s in enumerate(shifts):
                if s:
                    x[i] = np.roll(x[i], s, axis=1)
    if cfg.noise_std > 0:
        x += rng.normal(0.0, cfg.noise_std, size=x.shape).astype(np.float32)
        np.clip(x, 0.0, 1.0, out=x)
    if cfg.specaugment:
        fill = x.mean(axis=(1, 2, 3), keepdims=True)
        for i in range(n):
            for _ in range(cfg.freq_masks):
                size = int(rng.integers(0, max(1, int(cfg.max_mask * h)) + 1))
                start = int(rng.integers(0, h - size + 1))
                x[i, start:start + size] = fill[i, 0]
            for _ in range(cfg.time_masks):
                size = int(rng.integers(0, max(1, int(cfg.max_mask * w)) + 1))
                start = int(rng.integers(0, w - size + 1))
                x[i, :, start:start + size] = fill[i, 0]
    return x


def make_sequence(x: np.ndarray, y: np.ndarray | None, batch_size: int, *, shuffle: bool, seed: int,
                  augment: SpecAugmentConfig | None = None, sample_weight: np.ndarray | None = None,
                  workers: int = 1):
    """A keras.utils.PyDataset yielding (x, y[, w]) float32 batches; images scaled to 0..1."""
    import keras

    class ShardSequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
            self.epoch = 0
            self.order = np.arange(len(x))
            self._reorder()

        def _reorder(self):
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            idx = self.order[index * batch_size:(index + 1) * batch_size]
            batch = x[idx]
            if batch.dtype == np.uint8:
                batch = batch.astype(np.float32) / 255.0
            else:
                batch = batch.astype(np.float32, copy=True)
            if augment is not None and batch.ndim == 4:
                batch = augment_images(batch, augment, np.random.default_rng([seed, self.epoch, index]))
            if y is None:
                return (batch,)
            if sample_weight is not None:
                return batch, y[idx], sample_weight[idx]
            return batch, y[idx]

        def on_epoch_end(self):
            self.epoch += 1
            self._reorder()

    return ShardSequence()


def one_hot(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for row, lab in enumerate(labels):
        out[row, index[lab]] = 1.0
    return out
