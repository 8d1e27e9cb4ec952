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
    inputs: dict  # input kind -> raw rows: uint8 / uint16 images (N, H, W, C) or float32 features
    labels: np.ndarray  # str label per row
    meta: "object"  # pandas DataFrame with META_COLUMNS

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def x(self) -> np.ndarray:
        """The rows of a single-input load."""
        if len(self.inputs) != 1:
            raise ValueError(f"{len(self.inputs)} inputs loaded ({', '.join(self.inputs)}): use .inputs")
        return next(iter(self.inputs.values()))

    @property
    def speakers(self) -> np.ndarray:
        return self.meta["speaker"].to_numpy(dtype=object)

    def subset(self, mask: np.ndarray) -> "SplitData":
        mask = np.asarray(mask)
        return SplitData(inputs={k: v[mask] for k, v in self.inputs.items()}, labels=self.labels[mask],
                         meta=self.meta[mask].reset_index(drop=True))


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
        dtype = np.uint16 if meta.get("image_scale") else np.uint8
        return np.zeros((0,) + tuple(meta.get("image_shape", (0, 0, 0))), dtype=dtype)
    shape = meta.get("extras_shapes", {}).get(input_kind, [0])
    return np.zeros((0,) + tuple(shape) + ((1,) if input_kind == "mfcc" else ()), dtype=np.float32)


def load_rows(input_kinds="image", root: Path = SHARDS, select=None, workers: int = 0,
              needed_by: str | None = None) -> SplitData:
    """The rows of every shard for which `select(meta DataFrame) -> bool mask` holds (all when None), with
    one raw array per input kind (image | mfcc | vector | utterance | compare | egemaps; a kind or a tuple);
    needed_by: who reads them, for the error when the shards lack one (default: the model)."""
    import pandas as pd

    kinds = (input_kinds,) if isinstance(input_kinds, str) else tuple(input_kinds)
    files = shard_files(root)
    xs: dict[str, list] = {k: [] for k in kinds}
    metas = []
    for f in files:
        schema = pq.read_schema(f)
        for kind in kinds:
            if _column(kind) not in schema.names:
                raise UserError(f"{f} has no column {_column(kind)!r}, which {needed_by or 'the model'} reads: the "
                                f"shards were rendered for other params (render computes what `model` reads, what "
                                f"crossval.baseline needs and features.extra); re-run render (dvc repro render)")
        meta_cols = [c for c in META_COLUMNS if c in schema.names]
        meta = pq.read_table(f, columns=meta_cols).to_pandas()
        mask = np.ones(len(meta), dtype=bool) if select is None else np.asarray(select(meta), dtype=bool)
        if not mask.any():
            continue
        index = np.flatnonzero(mask)
        metas.append(meta.iloc[index].reset_index(drop=True))
        for kind in kinds:
            table = pq.read_table(f, columns=[_column(kind)]).take(index)
            xs[kind].append(_read_column(f, table, kind, workers))
    if not metas:
        return SplitData(inputs={k: _empty_x(files[0], k) for k in kinds}, labels=np.array([], dtype=object),
                         meta=pd.DataFrame(columns=META_COLUMNS))
    meta = pd.concat(metas, ignore_index=True)
    return SplitData(inputs={k: np.concatenate(v) for k, v in xs.items()}, labels=meta["label"].to_numpy(),
                     meta=meta)


def _read_column(f: Path, table, input_kind: str, workers: int) -> np.ndarray:
    """One shard's selected rows of one input column as an array (PNGs decoded across processes)."""
    from pipeline.parallel import imap

    column = _column(input_kind)
    if input_kind == "image":
        pngs = table.column("image").to_pylist()
        n = max(1, min(workers or 1, len(pngs)))
        chunks = [pngs[i::n] for i in range(n)] if n > 1 else [pngs]
        parts = list(imap(_decode_many, chunks, n, desc=f"decode {f.stem}", unit="chunk", chunksize=1))
        # undo the round-robin interleave so rows stay in shard order
        out = np.empty((len(pngs),) + parts[0].shape[1:], dtype=parts[0].dtype)
        for i, part in enumerate(parts):
            out[i::n] = part
        return out
    shape = read_metadata(f).get("extras_shapes", {}).get(input_kind)
    flat = np.stack(table.column(column).to_numpy(zero_copy_only=False)).astype(np.float32)
    x = flat.reshape((len(flat),) + tuple(shape)) if shape else flat
    return x[..., None] if input_kind == "mfcc" else x  # (frames, n_mfcc, 1) for the 2-D CNN


def load_split(split: str, input_kinds="image", root: Path = SHARDS, split_file: Path = SPLIT_FILE,
               workers: int = 0) -> SplitData:
    """The rows of one split ('train', 'val', 'test'), as split.parquet assigns them."""
    return load_rows(input_kinds, root, select=lambda meta: split_of_rows(meta, split_file) == split,
                     workers=workers)


@dataclass
class SpecAugmentConfig:
    """On-the-fly training augmentation (train.augment): spectrogram time shift, noise and SpecAugment masks,
    and mixup of whole examples (any input)."""
    time_shift: float = 0.1
    noise_std: float = 0.02
    specaugment: bool = False
    freq_masks: int = 2
    time_masks: int = 2
    max_mask: float = 0.1
    mixup: float = 0.0  # Beta(alpha, alpha) mixing of example pairs and their labels; 0 = off


def augment_images(x: np.ndarray, cfg: SpecAugmentConfig, rng: np.random.Generator, unit_range: bool = True
                   ) -> np.ndarray:
    """On-the-fly spectrogram augmentation of a float batch (N, H, W, C): time shift, noise, masks.

    unit_range: the papers' 0..1 image (noise is clipped to it, masks take the image's mean); otherwise a
    normalised spectrogram (z-scores: masks are 0, the mean)."""
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
        if unit_range:
            np.clip(x, 0.0, 1.0, out=x)
    if cfg.specaugment:
        fill = x.mean(axis=(1, 2, 3), keepdims=True) if unit_range else np.zeros((n, 1, 1, 1), np.float32)
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


def mixup(xs: dict, y: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Each example mixed with another of the batch (lam ~ Beta(alpha, alpha), the larger share kept first),
    every input and the one-hot labels alike (Zhang et al. 2018): a smoother decision surface on small data."""
    n = len(y)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    partner = rng.permutation(n)
    out = {}
    for key, x in xs.items():
        shape = (n,) + (1,) * (x.ndim - 1)
        out[key] = lam.reshape(shape) * x + (1.0 - lam.reshape(shape)) * x[partner]
    return out, lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]


# Threads that prepare an augmented training epoch's next batches (time shift, masks, mixup) while the model
# trains on the last one; each batch depends only on (seed, epoch, index), so they come out the same with any
# count of them. cnn_pooled on an EmoDB fold, 2 cores: 1.8-2.0 s an epoch against 2.2-2.5 s made in turn; a
# batch without augmentation (features: a slice) is quicker made in turn, 2.7 s a functionals training against
# 6.6 s with the threads' hand-over (docs/performance.md).
TRAINING_BATCH_THREADS = 2


def make_sequence(x, y: np.ndarray | None, batch_size: int, *, shuffle: bool, seed: int,
                  augment: SpecAugmentConfig | None = None, sample_weight: np.ndarray | None = None,
                  workers: int | None = None, initial_epoch: int = 0, alternative=None,
                  alternative_share: float = 0.0, offsets=None, clip: float = 5.0):
    """A keras.utils.PyDataset yielding (x, y[, w]) float32 batches. x: one array, or {input name: array}
    for a model of several inputs. uint8 arrays (the papers' images) are scaled to 0..1 per batch; other
    arrays are the model's values already (normalised). With `augment`, the spectrogram augmentation goes to
    the input named "image" (or a bare 4-D array: pass augment only for images) and mixup to every input. The order and augmentation of epoch e depend only on (seed, e): a
    resumed run continues the sequence. `workers`: threads making batches ahead; None = TRAINING_BATCH_THREADS
    for augmented batches, else 1 (in turn with the training step). `alternative`: other values of the same
    rows (x's structure; the rows normalised as a stranger's file is, train.cold_share), of which each epoch serves
    a seeded `alternative_share` of the rows in place of x's. `offsets`: instead of `alternative`, a stranger's
    offset per row (x's structure, cold_offsets), of which the same share of rows gets a random row's added
    (redrawn every batch, clipped to +-clip): rows met as a stranger with someone else's voice."""
    import keras

    if workers is None:
        workers = TRAINING_BATCH_THREADS if augment is not None else 1

    named = isinstance(x, dict)
    xs = x if named else {"x": x}
    length = len(next(iter(xs.values())))
    alts = None if alternative is None or alternative_share <= 0 else (
        alternative if named else {"x": alternative})
    shifts = None if offsets is None or alternative_share <= 0 else (offsets if named else {"x": offsets})

    class ShardSequence(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
            self.epoch = initial_epoch
            self.order = np.arange(length)
            self._reorder()

        def _reorder(self):
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(length)
            if alts is not None or shifts is not None:  # which rows this epoch serves from `alternative`: (seed, epoch) alone decide
                self.swap = np.random.default_rng([seed, self.epoch, 1]).random(length) < alternative_share

        def __len__(self):
            return math.ceil(length / batch_size)

        def __getitem__(self, index):
            idx = self.order[index * batch_size:(index + 1) * batch_size]
            rng = np.random.default_rng([seed, self.epoch, index])
            batch = {}
            for key, arr in xs.items():
                b = arr[idx]
                if alts is not None and self.swap[idx].any():
                    swap = self.swap[idx]
                    b[swap] = alts[key][idx[swap]]
                if shifts is not None and self.swap[idx].any():
                    swap = np.flatnonzero(self.swap[idx])
                    source = np.random.default_rng([seed, self.epoch, index, 2]).integers(0, length, len(swap))
                    b = b.astype(np.float32, copy=True)
                    b[swap] = shifted(b[swap], shifts[key][source], clip)
                unit = b.dtype == np.uint8
                b = b.astype(np.float32) / 255.0 if unit else b.astype(np.float32, copy=True)
                if augment is not None and b.ndim == 4 and key in ("image", "x"):  # not an MFCC matrix
                    b = augment_images(b, augment, rng, unit_range=unit)
                batch[key] = b
            target = None if y is None else y[idx]
            if augment is not None and augment.mixup > 0 and target is not None:
                batch, target = mixup(batch, target, augment.mixup, rng)
            inputs = batch if named else batch["x"]
            if target is None:
                return (inputs,)
            if sample_weight is not None:
                return inputs, target, sample_weight[idx]
            return inputs, target

        def on_epoch_end(self):
            self.epoch += 1
            self._reorder()

    return ShardSequence()


def cold_offsets(x: np.ndarray, x_cold: np.ndarray) -> np.ndarray:
    """Per row, how far a stranger's normalisation moves it from its speaker's (x_cold - x): per feature for a
    vector; per band and plane for a spectrogram (its mean over the frames that carry sound, padding is 0)."""
    x, x_cold = np.asarray(x, dtype=np.float32), np.asarray(x_cold, dtype=np.float32)
    if x.ndim != 4:
        return x_cold - x
    sound = ((x != 0) | (x_cold != 0)).any(axis=(1, 3), keepdims=True)  # (rows, 1, frames, 1)
    total = ((x_cold - x) * sound).sum(axis=2, keepdims=True)
    return (total / np.maximum(sound.sum(axis=2, keepdims=True), 1)).astype(np.float32)


def shifted(rows: np.ndarray, offsets: np.ndarray, clip: float) -> np.ndarray:
    """Rows moved by offsets (cold_offsets' shape), clipped to +-clip; a spectrogram's silent frames stay 0."""
    if rows.ndim == 4:
        offsets = offsets * (rows != 0).any(axis=(1, 3), keepdims=True)
    return np.clip(rows + offsets, -clip, clip).astype(np.float32)


def one_hot(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for row, lab in enumerate(labels):
        out[row, index[lab]] = 1.0
    return out
