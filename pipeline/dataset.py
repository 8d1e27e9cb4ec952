"""Training input: Parquet shards -> decoded, augmented, shuffled batches.

Backend-neutral (a keras.utils.PyDataset over numpy arrays, no tf.data), so the same pipeline feeds
Keras on TensorFlow, JAX or PyTorch. Shards hold every rendered clip; a split's rows are chosen by joining
split.parquet. Shards are read one at a time and the PNGs decoded in worker processes into one compact
uint8 array (a 128x128x3 image is 48 KiB, so 16k images are 0.8 GB); batches are then cut, converted to
float and augmented on the fly, training split only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.errors import UserError
from pipeline.paths import SHARDS, SPLIT_FILE
from pipeline.shards import read_metadata, shard_files

META_COLUMNS = ["name", "corpus", "speaker", "gender", "label", "augmented", "item_id", "utt_id", "augmentation",
                "source_path"]


@dataclass
class SplitData:
    x: np.ndarray  # uint8 images (N, H, W, C) or float32 features
    labels: np.ndarray  # str label per row
    meta: "object"  # pandas DataFrame with META_COLUMNS

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> "SplitData":
        mask = np.asarray(mask)
        return SplitData(x=self.x[mask], labels=self.labels[mask], meta=self.meta[mask].reset_index(drop=True))


def split_of_rows(meta, split_file: Path = SPLIT_FILE) -> np.ndarray:
    """The split ('train' / 'val' / 'test', or None) of each shard row, from split.parquet.

    Originals take their utterance's split; an augmented copy is training data only, and only while its
    source utterance is in the training split (a copy of a now-test utterance would leak it)."""
    import pandas as pd

    if not Path(split_file).exists():
        raise UserError(f"{split_file} not found: run the split stage first (dvc repro split)")
    table = pd.read_parquet(split_file, columns=["corpus", "utt_id", "split"])
    where = dict(zip(zip(table["corpus"], table["utt_id"]), table["split"]))
    out = np.array([where.get((c, u)) for c, u in zip(meta["corpus"], meta["utt_id"])], dtype=object)
    aug = meta["augmented"].to_numpy(dtype=bool)
    out[aug] = np.where(out[aug] == "train", "train", None)
    return out


def _decode(png: bytes) -> np.ndarray:
    from pipeline.features import decode_png

    arr = decode_png(png)
    return arr[..., None] if arr.ndim == 2 else arr


def _decode_many(pngs: list) -> np.ndarray:
    return np.stack([_decode(p) for p in pngs])


def _column(input_kind: str) -> str:
    return "image" if input_kind == "image" else f"x_{input_kind}"


def _empty_x(shard: Path, input_kind: str) -> np.ndarray:
    meta = read_metadata(shard)
    if input_kind == "image":
        return np.zeros((0,) + tuple(meta.get("image_shape", (0, 0, 0))), dtype=np.uint8)
    shape = meta.get("extras_shapes", {}).get(input_kind, [0])
    return np.zeros((0,) + tuple(shape) + ((1,) if input_kind == "mfcc" else ()), dtype=np.float32)


def load_rows(input_kind: str = "image", root: Path = SHARDS, select=None, workers: int = 0,
              needed_by: str | None = None) -> SplitData:
    """The rows of every shard for which `select(meta DataFrame) -> bool mask` holds (all when None).
    input_kind: image | mfcc | vector | utterance | compare | egemaps; needed_by: who reads it, for the error
    when the shards lack it (default: the model)."""
    import pandas as pd

    from pipeline.parallel import imap

    files = shard_files(root)
    column = _column(input_kind)
    xs, metas = [], []
    for f in files:
        schema = pq.read_schema(f)
        if column not in schema.names:
            raise UserError(f"{f} has no column {column!r}, which {needed_by or 'the model'} reads: the shards were "
                            f"rendered for other params (render computes what `model` reads, what "
                            f"crossval.baseline needs and features.extra); re-run render (dvc repro render)")
        meta_cols = [c for c in META_COLUMNS if c in schema.names]
        meta = pq.read_table(f, columns=meta_cols).to_pandas()
        mask = np.ones(len(meta), dtype=bool) if select is None else np.asarray(select(meta), dtype=bool)
        if not mask.any():
            continue
        index = np.flatnonzero(mask)
        table = pq.read_table(f, columns=[column]).take(index)
        metas.append(meta.iloc[index].reset_index(drop=True))
        if input_kind == "image":
            pngs = table.column("image").to_pylist()
            n = max(1, min(workers or 1, len(pngs)))
            chunks = [pngs[i::n] for i in range(n)] if n > 1 else [pngs]
            parts = list(imap(_decode_many, chunks, n, desc=f"decode {f.stem}", unit="chunk", chunksize=1))
            # undo the round-robin interleave so rows stay in shard order
            out = np.empty((len(pngs),) + parts[0].shape[1:], dtype=np.uint8)
            for i, part in enumerate(parts):
                out[i::n] = part
            xs.append(out)
        else:
            shape = read_metadata(f).get("extras_shapes", {}).get(input_kind)
            flat = np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)
            x = flat.reshape((len(flat),) + tuple(shape)) if shape else flat
            xs.append(x[..., None] if input_kind == "mfcc" else x)  # (frames, n_mfcc, 1) for the 2-D CNN
    if not xs:
        x = _empty_x(files[0], input_kind)
        return SplitData(x=x, labels=np.array([], dtype=object), meta=pd.DataFrame(columns=META_COLUMNS))
    meta = pd.concat(metas, ignore_index=True)
    return SplitData(x=np.concatenate(xs), labels=meta["label"].to_numpy(), meta=meta)


def load_split(split: str, input_kind: str = "image", root: Path = SHARDS, split_file: Path = SPLIT_FILE,
               workers: int = 0) -> SplitData:
    """The rows of one split ('train', 'val', 'test'), as split.parquet assigns them."""
    return load_rows(input_kind, root, select=lambda meta: split_of_rows(meta, split_file) == split,
                     workers=workers)


MIN_SPEAKER_ROWS = 10  # fewer clips than this give no usable statistics of a speaker's own


def standardise_by_speaker(x: np.ndarray, speakers, stats: dict | None = None, min_rows: int = MIN_SPEAKER_ROWS,
                           clip: float = 5.0) -> np.ndarray:
    """Each speaker's features z-scored on that speaker's own statistics (mean and std over its rows).

    Speaker normalisation removes who is speaking (voice, recording channel) and keeps how: the field's
    standard fix for speaker-independent SER. It is unsupervised (no labels), but it does use every row of a
    speaker, so test speakers are normalised on their own unlabeled test audio (transductive, as in the
    published baselines). A speaker with fewer than `min_rows` rows falls back to `stats` (population mean
    and std, e.g. of the training speakers' raw features) or, without them, to the batch's own statistics.
    Values are clipped to +-clip so one odd file cannot dominate a linear model."""
    x = np.asarray(x, dtype=np.float32)
    out = np.empty_like(x)
    speakers = np.asarray(speakers, dtype=object)
    for spk in dict.fromkeys(speakers.tolist()):
        rows = speakers == spk
        part = x[rows]
        if rows.sum() >= min_rows:
            mean, std = part.mean(axis=0), part.std(axis=0)
        elif stats is not None:
            mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
        else:
            mean, std = x.mean(axis=0), x.std(axis=0)
        out[rows] = zscore(part, mean, std, clip)
    return out


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """(x - mean) / std, clipped: speaker standardisation's arithmetic, shared by training and predict."""
    return np.clip((x - mean) / (std + 1e-6), -clip, clip).astype(np.float32, copy=False)


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
                  workers: int = 1, initial_epoch: int = 0):
    """A keras.utils.PyDataset yielding (x, y[, w]) float32 batches; images scaled to 0..1.
    The order and augmentation of epoch e depend only on (seed, e): a resumed run continues the sequence."""
    import keras

    class ShardSequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
            self.epoch = initial_epoch
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
