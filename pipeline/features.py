"""Log-mel spectrogram images and extra feature arrays: the one implementation shared by render and predict.

    log_mel(y, sr, cfg)    (n_mels, frames) float32 dB, ref = max, top_db 80 (librosa.power_to_db semantics)
    to_image(logmel, cfg)  uint8 (H, W, C): min-max normalised, low frequencies at the bottom, resized;
                           colormap (RGB via a 256-entry LUT) | delta (static, delta, delta-delta) | gray
    extras(y, sr, cfg)     {"mfcc": (frames, n_mfcc), "vector": 1-D, "utterance": 1-D, "compare": 1-D,
                           "egemaps": 1-D} as cfg.extra asks
    outputs(y, sr, cfg, kinds, speech, recording)   the named outputs of one clip ("image" = PNG bytes): what render
                           computes for the clips its cache lacks
    render(y, sr, cfg)     all of it for one standardised clip -> Rendered(png, shape, extras)

The utterance functionals of the default recipe (openSMILE ComParE) are taken over the speech (`speech`: the
trimmed clip, whole, before it is padded or cut to the window) with `functionals_on: speech`, so padding never
enters their means, percentiles and voicing percentages and a long utterance keeps its ends; the baseline's
eGeMAPS over the recording as read, as the field computes it (RECORDING_KINDS); everything else reads the
fitted window. DEPENDS_ON lists the settings each output depends on: the render cache's key.

Speed: one STFT per clip (numpy framing + scipy rfft in float32), a cached mel filterbank applied with one
matrix product, one log per clip shared by the image and the MFCCs, PIL bilinear resize, and PNGs written
directly with zlib level 1 and no scanline filter. The mel and chroma filterbanks and the delta filter are
built here in numpy (once per process, cached) so workers never import librosa or scipy.signal (seconds
each on a small machine); the results match librosa.feature.melspectrogram / power_to_db / mfcc / delta /
chroma_stft (tuning 0), which the tests check.
The openSMILE functionals come from one native openSMILE instance per feature set, rate and thread, reset
between clips (ReusedSmile), not a new one per clip as opensmile's process_signal builds: the same values to
the last bit, ~1.1x faster (docs/performance.md); process_signal where reuse is unavailable.

PNGs are RGB (colormap, delta) or grayscale; INDEXED_COLORMAP_PNG switches colormap images to indexed colour.
Never imports TensorFlow/Keras or matplotlib.pyplot.
"""
from __future__ import annotations

import dataclasses
import io
import os
import re
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from pipeline.errors import ParamsError
from pipeline.params import boolean, choice, number, section, string_list, workers

CHANNEL_MODES = ("colormap", "delta", "gray")
IMAGE_KINDS = ("papers", "native")
# The native image's fixed scale per plane (dB, dB per frame): 16-bit PNG values 0..65535 map linearly onto
# these ranges, so a value means the same level in every image (0.0024 dB steps for the static plane). The
# static floor is power_to_db's own (amin 1e-10 = -100 dB): the window's zero padding sits exactly on it. A
# peak-normalised clip's loudest mel bin stays below +40 dB; deltas of speech stay within +-20 / +-11 dB.
NATIVE_SCALE = {"static": (-100.0, 60.0), "delta": (-40.0, 40.0), "delta2": (-20.0, 20.0)}
EXTRA_KINDS = ("mfcc", "vector", "utterance", "compare", "egemaps")
FUNCTIONAL_KINDS = ("compare", "egemaps")  # utterance functionals by openSMILE
# Taken over the recording as read (mono, its own rate; no trim, resampling or level change): eGeMAPS is the
# field's baseline input, and the field computes it on the files as they come. On the EmoDB copy, with the
# crossval baseline's folds and scorer, over the trimmed 16-kHz speech it scored 0.693 speaker-standardised /
# 0.568 plain, over the recordings 0.742 / 0.623 (the copy's README: 0.755 / 0.62): resampling to 16 kHz alone
# cost it 0.043. The baseline should be the one the field reports, not one our preprocessing weakened.
RECORDING_KINDS = ("egemaps",)
FUNCTIONALS_ON = ("speech", "window")  # the trimmed clip, whole | the fitted (padded or cut) window
AMIN = 1e-10
TOP_DB = 80.0
_DB_PER_NEPER = np.float32(10.0 / np.log(10.0))  # 10 * log10(x) == _DB_PER_NEPER * ln(x)
# Store colormap images as indexed-colour PNGs (palette = the colormap): identical RGB pixels, ~0.4 ms less
# per image to encode, ~35 % fewer bytes, faster to decode. Readers must decode with decode_png (or tf.io.decode_png), not a bare
# np.asarray(PIL.Image.open(...)), which returns palette indices.
INDEXED_COLORMAP_PNG = True


@dataclass(frozen=True)
class FeatureConfig:
    n_fft: int = 512  # 32 ms at 16 kHz
    hop_length: int = 160  # 10 ms
    n_mels: int = 64
    fmin: float = 0.0
    fmax: float | None = 8000.0
    image: str = "native"  # native: 16-bit dB, n_mels x frames | papers: 8-bit, min-max per image, resized
    image_height: int = 64  # the papers' image
    image_width: int = 64
    channels: str = "gray"
    colormap: str = "viridis"
    n_mfcc: int = 40
    functionals_on: str = "speech"
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The papers' image (height, width, channels); a native image is (n_mels, frames, channels)."""
        return (self.image_height, self.image_width, 1 if self.channels == "gray" else 3)

    def native_shape(self, n_samples: int) -> tuple[int, int, int]:
        """A native image of a clip of n_samples: (n_mels, frames, channels), frames as librosa center=True."""
        return (self.n_mels, 1 + n_samples // self.hop_length, 1 if self.channels == "gray" else 3)

    @classmethod
    def from_params(cls, params: dict) -> "FeatureConfig":
        """From the params dict (section `features`; missing keys take the defaults); ParamsError names the key."""
        sec = section(params or {}, "features", keys=(
            "n_fft", "hop_length", "n_mels", "fmin", "fmax", "image", "image_height", "image_width", "channels",
            "colormap", "n_mfcc", "functionals_on", "extra", *RenderOutput.KEYS))
        RenderOutput.from_params(params)  # checked with the rest of the section
        p = "features"
        d = cls()
        n_fft = number(sec, "n_fft", p, default=d.n_fft, lo=16, hi=65536, integer=True)
        hop = number(sec, "hop_length", p, default=d.hop_length, lo=1, hi=n_fft, integer=True)
        n_mels = number(sec, "n_mels", p, default=d.n_mels, lo=1, hi=1024, integer=True)
        fmin = float(number(sec, "fmin", p, default=d.fmin, lo=0))
        fmax = number(sec, "fmax", p, default=d.fmax, lo=fmin, lo_open=True, allow_none=True)
        height = number(sec, "image_height", p, default=d.image_height, lo=8, hi=4096, integer=True)
        width = number(sec, "image_width", p, default=d.image_width, lo=8, hi=4096, integer=True)
        image = choice(sec, "image", p, IMAGE_KINDS, default=d.image)
        channels = choice(sec, "channels", p, CHANNEL_MODES, default=d.channels)
        if image == "native" and channels == "colormap":
            raise ParamsError(f"{p}.channels", "a native image holds dB values, not colours: gray or delta "
                                               "(colormap is the papers' image, features.image: papers)")
        cmap = sec.get("colormap", d.colormap)
        import matplotlib  # the registry only; never pyplot

        if not isinstance(cmap, str) or cmap not in matplotlib.colormaps:
            raise ParamsError(f"{p}.colormap", f"{cmap!r} is not a matplotlib colormap "
                                               f"(e.g. viridis, magma, inferno, plasma, gray)")
        n_mfcc = number(sec, "n_mfcc", p, default=d.n_mfcc, lo=1, hi=n_mels, integer=True)
        functionals_on = choice(sec, "functionals_on", p, FUNCTIONALS_ON, default=d.functionals_on)
        extra = tuple(dict.fromkeys(string_list(sec, "extra", p, allowed=EXTRA_KINDS)))
        return cls(n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=fmin,
                   fmax=None if fmax is None else float(fmax), image=image, image_height=height, image_width=width,
                   channels=channels, colormap=cmap, n_mfcc=n_mfcc, functionals_on=functionals_on, extra=extra)


# The settings each output depends on, besides the audio settings (AUDIO_DEPENDS_ON) and the source: the render
# cache's key (pipeline/render_cache.py). A new setting that changes an output goes into its list here, once;
# tests/test_render_cache.py fails for a FeatureConfig field that no list names (or NOT_AN_OUTPUT_SETTING).
SPECTRUM = ("n_fft", "hop_length", "n_mels", "fmin", "fmax")
DEPENDS_ON = {
    "image": SPECTRUM + ("image", "image_height", "image_width", "channels", "colormap"),
    "mfcc": SPECTRUM + ("n_mfcc",),
    "vector": SPECTRUM + ("n_mfcc",),
    "utterance": SPECTRUM + ("n_mfcc",),
    "compare": ("functionals_on",),
    "egemaps": (),  # the recording as read; a training copy (no recording of its own): its speech
}
NOT_AN_OUTPUT_SETTING = ("extra",)  # which outputs to make, not how


def audio_depends_on(kind: str, cfg: FeatureConfig) -> tuple[str, ...]:
    """The AudioConfig fields output `kind` depends on: the trim, rate and level always (for a RECORDING_KINDS
    output, its training copies'); the window length (duration) unless it is a functional over the speech, which
    never sees the window."""
    if kind in RECORDING_KINDS or (kind in FUNCTIONAL_KINDS and cfg.functionals_on == "speech"):
        return ("sample_rate", "top_db", "peak_normalise")
    return ("sample_rate", "duration", "top_db", "peak_normalise")


@dataclass(frozen=True)
class RenderOutput:
    """The `features` keys that say how render writes the shards, not what a row holds (so not part of the
    settings a model card records)."""
    KEYS = ("shard_rows", "export_png", "workers")
    shard_rows: int = 2000  # rows per shard
    export_png: bool = False  # also write the PNGs to data/processed/png/ for people to look at
    workers: int = 1  # processes; features.workers 0 = one per CPU this process may use

    @classmethod
    def from_params(cls, params: dict) -> "RenderOutput":
        sec = section(params or {}, "features")
        return cls(shard_rows=number(sec, "shard_rows", "features", default=cls.shard_rows, lo=1, integer=True),
                   export_png=boolean(sec, "export_png", "features", default=cls.export_png),
                   workers=workers(sec, "features"))


@dataclass
class Rendered:
    png: bytes
    shape: tuple[int, int, int]
    extras: dict[str, np.ndarray]


def pin_threads() -> None:
    """One BLAS/OpenMP thread in this process (call in worker initialisers); parallelise across files."""
    from pipeline.parallel import pin_blas_threads

    pin_blas_threads()


# --------------------------------------------------------------------------------------- cached tables

def _frozen(a: np.ndarray) -> np.ndarray:
    """A contiguous read-only copy: cached tables are shared by every call in the process."""
    a = np.ascontiguousarray(a).copy()
    a.setflags(write=False)
    return a


@lru_cache(maxsize=16)
def _window(n_fft: int) -> np.ndarray:
    # periodic Hann, as librosa/scipy.signal.get_window("hann", n_fft, fftbins=True)
    return _frozen((0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32))


def _hz_to_mel(f):
    """Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=16)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft//2+1, n_mels) float32: librosa.filters.mel (Slaney scale and norm), transposed for power @ basis.

    Built here in numpy so a worker never imports librosa (seconds per process on a small machine).
    """
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return _frozen(weights.astype(np.float32).T)


@lru_cache(maxsize=16)
def _chroma_basis(sr: int, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """(n_fft//2+1, 12) float32: librosa.filters.chroma(sr, n_fft, tuning=0) (ctroct 5, octwidth 2, base C)."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * np.log2(frequencies / (440.0 / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * d / binwidthbins[None, :]) ** 2)
    norms = np.sqrt(np.sum(wts ** 2, axis=0, keepdims=True))
    wts = wts / np.where(norms > np.finfo(np.float64).tiny, norms, 1.0)
    wts *= np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2.0) ** 2))[None, :]
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return _frozen(wts[:, : int(1 + n_fft / 2)].astype(np.float32).T)


@lru_cache(maxsize=32)
def _lut(name: str) -> np.ndarray:
    """256 x 3 uint8 colour lookup table for a matplotlib colormap (no pyplot)."""
    import matplotlib

    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    return _frozen(np.clip(np.rint(rgba[:, :3] * 255.0), 0, 255).astype(np.uint8))


def _fmax(sr: int, cfg: FeatureConfig) -> float:
    return min(float(cfg.fmax), sr / 2.0) if cfg.fmax is not None else sr / 2.0


# ------------------------------------------------------------------------------------------- analysis

@dataclass
class _Analysis:
    padded: np.ndarray   # the signal, zero-padded by n_fft//2 at both ends (librosa center=True)
    frames: np.ndarray   # (T, n_fft) unwindowed frames of `padded`, hop_length apart (a view)
    power: np.ndarray    # (T, n_fft//2+1) power spectrogram
    mel: np.ndarray      # (T, n_mels) power mel spectrogram
    _db_abs: np.ndarray | None = None
    _db: np.ndarray | None = None

    @property
    def db_abs(self) -> np.ndarray:
        """(T, n_mels) power_to_db(mel, ref=1.0, top_db=None): absolute dB (the native image), one log per clip."""
        if self._db_abs is None:
            self._db_abs = power_to_db(self.mel, ref=1.0, top_db=None)
        return self._db_abs

    @property
    def db(self) -> np.ndarray:
        """(T, n_mels) power_to_db(mel, ref=1.0, top_db=80): the MFCC input, from db_abs (no second log).

        The papers' image's power_to_db(mel, ref=max, top_db=80) is exactly db - db.max().
        """
        if self._db is None:
            self._db = np.maximum(self.db_abs, self.db_abs.max() - np.float32(TOP_DB))
        return self._db

    def log_mel(self) -> np.ndarray:
        """(n_mels, T) dB with ref=max (0 dB = the loudest bin), as librosa.power_to_db(S, ref=np.max)."""
        db = self.db
        return np.ascontiguousarray((db - db.max()).T)


def _analyse(y: np.ndarray, sr: int, cfg: FeatureConfig) -> _Analysis:
    import scipy.fft

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio (samples,), got shape {y.shape}")
    n_fft, hop = cfg.n_fft, cfg.hop_length
    pad = n_fft // 2
    yp = np.zeros(y.shape[0] + 2 * pad, dtype=np.float32)  # librosa center=True, pad_mode="constant"
    yp[pad:pad + y.shape[0]] = y
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft)[::hop]
    spec = scipy.fft.rfft(frames * _window(n_fft), axis=1, workers=1)  # complex64 (T, bins)
    parts = spec.view(np.float32)  # re, im interleaved
    np.square(parts, out=parts)
    power = parts[:, 0::2] + parts[:, 1::2]
    mel = power @ _mel_basis(int(sr), n_fft, cfg.n_mels, float(cfg.fmin), _fmax(sr, cfg))
    return _Analysis(padded=yp, frames=frames, power=power, mel=mel)


def power_to_db(s: np.ndarray, ref: float | None = None, top_db: float | None = TOP_DB) -> np.ndarray:
    """librosa.power_to_db: ref=None means ref=max (the loudest bin is 0 dB)."""
    ref_value = float(np.max(s)) if ref is None else float(ref)
    db = np.log(np.maximum(s, AMIN))  # natural log: numpy's float32 log is SIMD, log10 is not (5x slower)
    db *= _DB_PER_NEPER
    db -= 10.0 * np.log10(max(AMIN, ref_value))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db.astype(np.float32, copy=False)


def log_mel(y: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """(n_mels, frames) float32 log-mel power spectrogram in dB (ref=max, top_db=80)."""
    return _analyse(y, sr, cfg).log_mel()


# ---------------------------------------------------------------------------------------------- images

def _unit(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1] (all zeros when flat)."""
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return np.zeros(x.shape, dtype=np.float32)
    return ((x - lo) * (1.0 / (hi - lo))).astype(np.float32, copy=False)


def _resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(rows, cols) float in [0, 1] -> (height, width) float32, PIL bilinear (antialiased when shrinking)."""
    if x.shape == (height, width):
        return np.ascontiguousarray(x, dtype=np.float32)
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _plane(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_mels, frames) -> (H, W) float in [0, 1], low frequencies at the bottom (as specshow draws it)."""
    return np.clip(_resize(_unit(x)[::-1], cfg.image_height, cfg.image_width), 0.0, 1.0)


@lru_cache(maxsize=16)
def _savgol_operator(n: int, width: int, order: int) -> np.ndarray:
    """(n, n) float32 M with x @ M.T == scipy.signal.savgol_filter(x, width, order, deriv=order, mode="interp").

    The filter is linear: interior points use the centred least-squares derivative, the first and last
    width//2 points the derivative of the polynomial fitted to the first / last window, as scipy does.
    """
    from math import factorial

    half = width // 2
    pos = np.arange(width, dtype=np.float64)
    vander = pos[:, None] ** np.arange(order + 1)[None, :]          # (width, order+1)
    fit = np.linalg.pinv(vander)                                     # coefficients = fit @ window
    # d^order/dx^order of sum c_k x^k is order! * c_order (constant for a degree-`order` fit)
    deriv = factorial(order) * fit[order]                            # (width,)
    op = np.zeros((n, n), dtype=np.float64)
    for i in range(half, n - half):
        op[i, i - half:i + half + 1] = deriv
    op[:half, :width] = deriv
    op[n - half:, n - width:] = deriv
    return _frozen(op.astype(np.float32).T)


def _delta(x: np.ndarray, order: int, width: int = 9) -> np.ndarray:
    """librosa.feature.delta(x, width=9, order, axis=-1, mode="interp"); shorter inputs shrink the window."""
    n = x.shape[-1]
    width = min(width, n if n % 2 else n - 1)
    if width < 3 or width <= order:
        return np.zeros_like(x)
    return (x @ _savgol_operator(n, width, order)).astype(np.float32, copy=False)


def to_image(logmel: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """uint8 (image_height, image_width, C): C=3 for colormap/delta, 1 for gray."""
    logmel = np.asarray(logmel, dtype=np.float32)
    if cfg.channels == "delta":
        planes = [logmel, _delta(logmel, 1), _delta(logmel, 2)]
        return np.stack([_to_u8(_plane(p, cfg)) for p in planes], axis=-1)
    plane = _to_u8(_plane(logmel, cfg))
    if cfg.channels == "gray":
        return plane[:, :, None]
    return np.take(_lut(cfg.colormap), plane, axis=0)


def native_planes(db_abs: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(frames, n_mels) absolute dB -> float32 (n_mels, frames, C) on the fixed scale (NATIVE_SCALE): the
    static plane [, its delta and delta-delta], clipped to their ranges, low frequencies at the bottom."""
    static = np.asarray(db_abs, dtype=np.float32).T  # (n_mels, frames)
    planes = [static] if cfg.channels == "gray" else [static, _delta(static, 1), _delta(static, 2)]
    out = np.empty((static.shape[0], static.shape[1], len(planes)), dtype=np.float32)
    for c, (plane, name) in enumerate(zip(planes, NATIVE_SCALE)):
        lo, hi = NATIVE_SCALE[name]
        out[:, :, c] = np.clip(plane[::-1], lo, hi)
    return out


def to_native(db_abs: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """uint16 (n_mels, frames, C): native_planes quantised to 0..65535 over each plane's fixed range."""
    planes = native_planes(db_abs, cfg)
    out = np.empty(planes.shape, dtype=np.uint16)
    for c, name in zip(range(planes.shape[2]), NATIVE_SCALE):
        lo, hi = NATIVE_SCALE[name]
        out[:, :, c] = np.rint((planes[:, :, c] - lo) * (65535.0 / (hi - lo)))
    return out


def image_scale(cfg: FeatureConfig) -> dict | None:
    """What an image's integer values mean, for the shard metadata and the model card: the native image's
    {plane: [lo_db, hi_db]} (0 and 65535 map to them), or None for the papers' 8-bit min-max image."""
    if cfg.image != "native":
        return None
    names = list(NATIVE_SCALE)[:1 if cfg.channels == "gray" else 3]
    return {name: list(NATIVE_SCALE[name]) for name in names}


def image_values(raw: np.ndarray, scale: dict | None) -> np.ndarray:
    """Decoded image(s) (..., H, W, C) -> the model's float32 values: the papers' 8-bit image scaled to 0..1,
    a native 16-bit image back to dB on its fixed scale (`scale` from image_scale, kept in the card)."""
    raw = np.asarray(raw)
    if scale is None:
        if raw.dtype != np.uint8:
            raise ValueError(f"a papers' image is 8-bit, got {raw.dtype}")
        return raw.astype(np.float32) * np.float32(1.0 / 255.0)
    if raw.dtype != np.uint16:
        raise ValueError(f"a native image is 16-bit, got {raw.dtype}")
    ranges = np.array(list(scale.values()), dtype=np.float32)  # (C, 2)
    if ranges.shape[0] != raw.shape[-1]:
        raise ValueError(f"image has {raw.shape[-1]} planes, scale {len(ranges)}")
    lo, hi = ranges[:, 0], ranges[:, 1]
    return (raw.astype(np.float32) * ((hi - lo) / np.float32(65535.0)) + lo).astype(np.float32)


def preview_png(png: bytes, colormap: str = "viridis") -> bytes:
    """A picture for people of a shard's image: a native 16-bit image's static plane contrast-stretched over its
    own range and coloured (on the fixed dB scale speech is mid-grey); a papers' image as it is."""
    raw = decode_png(png)
    if raw.dtype != np.uint16:
        return png
    static = raw[:, :, 0].astype(np.float32)
    sound = static[static > 0]  # 0 is the floor: padding
    lo = float(np.percentile(sound, 1)) if sound.size else 0.0
    hi = float(sound.max()) if sound.size else 1.0
    index = _to_u8(np.clip((static - lo) / max(hi - lo, 1.0), 0.0, 1.0))
    return encode_png(index, palette=_lut(colormap))


def image_floor(scale: dict | None) -> float | None:
    """The value of padding / digital silence in image_values of a native image: its static plane's floor."""
    return None if scale is None else float(scale["static"][0])


def _encode_image(a: "_Analysis", cfg: FeatureConfig) -> tuple[bytes, tuple[int, int, int]]:
    """PNG bytes of the clip's image and its shape: the native 16-bit image, or the papers' (colormap images
    go out as indexed-colour PNGs)."""
    if cfg.image == "native":
        img = to_native(a.db_abs, cfg)
        return encode_png(img), tuple(int(v) for v in img.shape)
    logmel = a.log_mel()
    if cfg.channels == "colormap" and INDEXED_COLORMAP_PNG:
        index = _to_u8(_plane(np.asarray(logmel, dtype=np.float32), cfg))
        return encode_png(index, palette=_lut(cfg.colormap)), cfg.image_shape
    img = to_image(logmel, cfg)
    return encode_png(img), tuple(int(v) for v in img.shape)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


_PNG_COLOUR = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)


def encode_png(img: np.ndarray, level: int = 1, palette: np.ndarray | None = None) -> bytes:
    """uint8 or uint16 (H, W, C) or (H, W) -> PNG bytes: 8- or 16-bit, no scanline filter, zlib level 1.

    With `palette` ((256, 3) uint8), img holds (H, W) indices and the PNG is an indexed-colour image
    (PLTE = palette): the same RGB pixels at a third of the bytes to compress, store and inflate.
    Written directly (IHDR [+ PLTE] + one IDAT + IEND) rather than through PIL: PIL's adaptive scanline
    filtering costs ~4x the compression itself and makes spectrogram images larger, not smaller.
    Any PNG reader reads it (decode_png, PIL + .convert("RGB"), tf.io.decode_png(channels=3), browsers).
    """
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"encode_png wants uint8 or uint16, got {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    h, w, c = img.shape
    depth = 8 * img.dtype.itemsize
    chunks = []
    if palette is not None and depth == 16:
        raise ValueError("encode_png: a palette indexes 8-bit images")
    if palette is not None:
        palette = np.asarray(palette, dtype=np.uint8)
        if c != 1 or palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
            raise ValueError("encode_png: a palette needs (H, W) indices and a (n <= 256, 3) uint8 palette")
        colour = 3
        chunks.append(_chunk(b"PLTE", palette.tobytes()))
    elif c in _PNG_COLOUR:
        colour = _PNG_COLOUR[c]
    else:
        raise ValueError(f"encode_png: 1-4 channels, got {c}")
    row_bytes = w * c * img.dtype.itemsize
    raw = np.zeros((h, 1 + row_bytes), dtype=np.uint8)  # filter byte 0 (None) before each scanline
    raw[:, 1:] = img.astype(img.dtype.newbyteorder(">"), copy=False).reshape(h, w * c).view(np.uint8)
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))
    return b"".join((b"\x89PNG\r\n\x1a\n", header, *chunks,
                     _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)), _chunk(b"IEND", b"")))


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 or uint16 (H, W, C) (C=1 for grayscale; indexed-colour PNGs come back as RGB).

    16-bit images written by encode_png (no scanline filter) are read here directly: PIL reads 16-bit RGB
    as 8-bit. Any other 16-bit PNG goes through PIL, which keeps 16-bit grayscale only."""
    direct = _decode_unfiltered16(data)
    if direct is not None:
        return direct
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _decode_unfiltered16(data: bytes) -> np.ndarray | None:
    """A 16-bit gray or RGB, non-interlaced PNG whose every scanline has filter 0 (as encode_png writes) ->
    uint16 (H, W, C); None for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    channels = {0: 1, 2: 3}.get(colour)
    if depth != 16 or channels is None or interlace:
        return None
    pos, idat = 8, []
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(h, 1 + w * channels * 2)
    if raw[:, 0].any():
        return None  # filtered scanlines: not ours
    return raw[:, 1:].copy().view(">u2").astype(np.uint16).reshape(h, w, channels)


# ---------------------------------------------------------------------------------------------- extras

def _mfcc(db: np.ndarray, n_mfcc: int) -> np.ndarray:
    """(T, n_mels) mel dB (ref=1) -> (T, n_mfcc): librosa.feature.mfcc (DCT-II, ortho)."""
    import scipy.fft

    return scipy.fft.dct(db, type=2, norm="ortho", axis=1, workers=1)[:, :n_mfcc].astype(np.float32)


def extras(y: np.ndarray, sr: int, cfg: FeatureConfig, analysis: _Analysis | None = None,
           speech: np.ndarray | None = None, recording: tuple[np.ndarray, int] | None = None
           ) -> dict[str, np.ndarray]:
    """The extra arrays named in cfg.extra (empty dict when none), of the window y:

    mfcc       (frames, n_mfcc)                              paper C 2-D CNN input
    vector     frames*n_mfcc + frames (ZCR) + frames (RMS)   paper C 1-D CNN input (flattened MFCC, ZCR, RMS)
    utterance  n_mfcc + 12 + n_mels                          paper B MLP: mean MFCC, mean chroma, mean mel power
    compare    6373 openSMILE ComParE 2016 functionals      the `functionals` model (the default recipe)
    egemaps    88 openSMILE eGeMAPSv02 functionals          the field's baseline (eGeMAPS + SVM, crossval)
    The openSMILE sets are utterance functionals: with cfg.functionals_on "speech" they are taken over
    `speech`, the trimmed clip whole before it was padded or cut to the window (None: y is the whole clip),
    so the padding never enters them; with "window", over y. eGeMAPS (RECORDING_KINDS) is taken over
    `recording`, (mono samples as read, their rate); None (a training copy, which has no recording of its
    own): over its speech.
    """
    if not cfg.extra:
        return {}
    out: dict[str, np.ndarray] = {}
    spectral = [k for k in cfg.extra if k not in FUNCTIONAL_KINDS]
    a = (analysis if analysis is not None else _analyse(y, sr, cfg)) if spectral else None
    mfcc = _mfcc(a.db, cfg.n_mfcc) if spectral else None
    if "mfcc" in cfg.extra:
        out["mfcc"] = mfcc
    if "vector" in cfg.extra:
        # per-frame sums over the same frames as the STFT, from running sums: O(samples), not O(frames x n_fft)
        from pipeline.audio import frame_sums

        n_frames, n_fft, hop = a.frames.shape[0], cfg.n_fft, cfg.hop_length
        rms = np.sqrt(np.maximum(frame_sums(np.square(a.padded), n_fft, hop, n_frames), 0.0) / n_fft)
        signs = a.padded >= 0  # librosa zero_crossings(zero_pos=True): a change of sign from the sample before
        changes = np.zeros(a.padded.shape[0], dtype=np.float32)
        changes[1:] = signs[1:] != signs[:-1]
        zcr = frame_sums(changes, n_fft, hop, n_frames) / float(n_fft)
        out["vector"] = np.concatenate([mfcc.ravel(), zcr, rms]).astype(np.float32)
    if "utterance" in cfg.extra:
        chroma = a.power @ _chroma_basis(int(sr), cfg.n_fft)  # (T, 12), librosa.feature.chroma_stft
        peak = np.max(np.abs(chroma), axis=1, keepdims=True)
        chroma = chroma / np.where(peak > np.finfo(np.float32).tiny, peak, 1.0)
        out["utterance"] = np.concatenate([mfcc.mean(axis=0), chroma.mean(axis=0), a.mel.mean(axis=0)]
                                          ).astype(np.float32)
    over = y if cfg.functionals_on == "window" or speech is None else speech
    for kind in FUNCTIONAL_KINDS:
        if kind not in cfg.extra:
            continue
        if kind in RECORDING_KINDS:
            out[kind] = smile_functionals(*(recording or (y if speech is None else speech, sr)), kind)
        else:
            out[kind] = smile_functionals(over, sr, kind)
    return out


OPENSMILE_SETS = {"compare": "ComParE_2016", "egemaps": "eGeMAPSv02"}
# Reuse one native openSMILE instance per feature set, rate, process and thread (ReusedSmile) instead of
# opensmile.Smile.process_signal, which parses the config and builds every component anew for each clip.
# False: today's path for every clip (the bench times both).
REUSE_SMILE_INSTANCE = True
REUSED_PER_THREAD = 8  # instances (feature set x rate) kept per thread; the least recently used is freed


@lru_cache(maxsize=4)
def _smile(kind: str):
    """One openSMILE extractor per process (building one parses its config: ~0.5 s)."""
    import opensmile

    return opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, OPENSMILE_SETS[kind]),
                           feature_level=opensmile.FeatureLevel.Functionals)


class ReusedSmile:
    """One native openSMILE (SMILEapi) instance of a feature set at one sample rate, run once per clip and reset
    after each run, for Smile(feature_set, Functionals).process_signal's values to the last bit.

    process_signal creates, configures and frees a new instance for every clip (ComParE ~20 ms, eGeMAPS ~7 ms
    before any audio). smile_reset deletes every component (the data memory included) and creates them again
    from the config parsed once, so nothing of one clip reaches the next; it skips the parsing and the
    wrapper's per-clip pandas frame (ComParE ~16 ms, eGeMAPS ~3 ms left a clip). It uses opensmile-python's
    internals (opensmile.core.lib, Smile._options / _smile, the config names Smile._extract uses): written
    against opensmile 2.6.0; `probe` checks it against process_signal before it is used. Not thread-safe:
    one per thread (_reused_smile).
    """

    def __init__(self, smile, sr: int):
        from opensmile.core.config import config
        from opensmile.core.lib import ExternalSinkCallback, smileapi

        self._source = config.EXTERNAL_SOURCE_COMPONENT
        self._sink = config.EXTERNAL_OUTPUT_COMPONENT
        self._set_callback = smileapi.smile_extsink_set_data_callback
        self.num_features = len(smile.feature_names)
        # the options Smile._extract builds for each clip, once
        options = smile._options()
        options["source"] = os.path.join(smile.default_config_root, config.EXTERNAL_INPUT_CONFIG)
        options["sampleRate"] = int(sr)
        options["nBits"] = 16
        self._native = smile._smile(options=options)
        self._rows: list[np.ndarray] = []
        # one callback object for the instance's life: the native side keeps only its address
        self._callback = ExternalSinkCallback(self._collect)

    def _collect(self, data, n, _param) -> int:
        self._rows.append(np.ctypeslib.as_array(data, shape=(n,)).copy())
        return 1

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """(num_features,) float32 functionals of the mono float32 clip y, NaN when openSMILE gives no frame."""
        x = np.array(y, dtype=np.float32)  # as Smile._extract: scale, truncate to 16 bits
        x *= 32768
        x = x.astype(np.int16)
        native = self._native
        self._rows = []
        # a reset drops the sink's callback: set it again for every run
        native._check_smile_result(self._set_callback(native._smileobj, self._sink.encode("ascii"),
                                                      self._callback, None))
        native.external_audio_source_write_data(self._source, bytes(x))  # refused (no samples): no frame, as there
        native.external_audio_source_set_eoi(self._source)
        native.run()
        native.reset()
        if not self._rows:
            warnings.warn(UserWarning("Segment too short, filling with NaN."))  # process_signal's words
            return np.full(self.num_features, np.nan, dtype=np.float32)
        return self._rows[0]

    def free(self) -> None:
        self._native.free()


# 0.6 s at the instance's rate: voiced (harmonics of a moving f0) and noisy parts, so every functional has values
def _probe_clip(sr: int) -> np.ndarray:
    t = np.arange(int(0.6 * sr)) / sr
    f0 = 140.0 + 30.0 * np.sin(2 * np.pi * 2.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8)) * (t < 0.4)
    noise = np.random.default_rng(0).normal(scale=0.05, size=t.size)
    return (0.3 * voiced + noise).astype(np.float32)


def probe(reused: ReusedSmile, smile, sr: int) -> bool:
    """Whether the reused instance gives process_signal's values bitwise, twice in a row (the second after a
    reset), on a probe clip: a different opensmile that converts or configures otherwise fails here."""
    y = _probe_clip(sr)
    want = smile.process_signal(y, int(sr)).to_numpy()[0]
    return all(np.asarray(want).tobytes() == reused(y).tobytes() for _ in range(2))


_local = threading.local()


def _reused_smile(kind: str, sr: int) -> ReusedSmile | None:
    """This thread's ReusedSmile of `kind` at `sr`, built and probed on first use; None where it cannot be used
    (opensmile's internals differ, the probe failed): the caller falls back to process_signal."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid, _local.instances = os.getpid(), {}  # a forked worker: never touch the parent's instances
    instances = _local.instances
    key = (kind, int(sr))
    if key in instances:
        instances[key] = instances.pop(key)  # most recently used last
        return instances[key]
    reused = None
    try:
        candidate = ReusedSmile(_smile(kind), sr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ok = probe(candidate, _smile(kind), sr)
        if ok:
            reused = candidate
        else:
            candidate.free()
            warnings.warn(f"openSMILE {kind} at {sr} Hz: a reused instance differs from process_signal; "
                          f"using process_signal")
    except Exception as exc:  # another opensmile-python: its internals moved
        warnings.warn(f"openSMILE {kind} at {sr} Hz: no reusable instance ({type(exc).__name__}: {exc}); "
                      f"using process_signal")
    while len(instances) >= REUSED_PER_THREAD:
        oldest = instances.pop(next(iter(instances)))
        if oldest is not None:
            oldest.free()
    instances[key] = reused
    return reused


def smile_functionals(y: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """Utterance-level openSMILE functionals of a mono clip: ComParE 2016 (6373) or eGeMAPSv02 (88).

    openSMILE (audEERING) is the reference implementation of both sets; re-implementing its 65 LLDs and
    their functionals would be neither faster nor comparable with published figures. Computed by this
    thread's reused instance (ReusedSmile), or by process_signal where that is unavailable: the same values.
    """
    y = np.asarray(y, dtype=np.float32)
    reused = _reused_smile(kind, int(sr)) if REUSE_SMILE_INSTANCE else None
    if reused is not None:
        try:
            values = reused(y)
        except Exception:
            # its state is unknown now: drop it (a new one next clip), and let process_signal give this clip's
            # answer or its error
            _local.instances.pop((kind, int(sr)), None)
            try:
                reused.free()
            except Exception:
                pass
            values = _smile(kind).process_signal(y, int(sr)).to_numpy()[0]
    else:
        values = _smile(kind).process_signal(y, int(sr)).to_numpy()[0]
    return np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


# ---------------------------------------------------------------------------------------------- render

def render(y: np.ndarray, sr: int, cfg: FeatureConfig, speech: np.ndarray | None = None) -> Rendered:
    """One standardised clip -> PNG bytes of the spectrogram image, its shape, and the extra arrays.
    `speech`: the clip before it was fitted to the window, for the functionals (None: y is the whole clip)."""
    a = _analyse(y, sr, cfg)
    png, shape = _encode_image(a, cfg)
    return Rendered(png=png, shape=shape, extras=extras(y, sr, cfg, a, speech))


def outputs(y: np.ndarray | None, sr: int, cfg: FeatureConfig, kinds, speech: np.ndarray | None = None,
            recording: tuple[np.ndarray, int] | None = None) -> dict:
    """The outputs named in `kinds` of one clip: "image" (PNG bytes) and extra kinds (arrays), nothing else.
    y: the window (fitted clip); speech: the clip before fitting, for the functionals; recording: (mono samples
    as read, their rate), for RECORDING_KINDS (None: a training copy, its speech). What the render stage
    computes for the outputs its cache lacks: a clip whose image is cached pays no STFT for its functionals."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k != "image" and k not in EXTRA_KINDS]
    if unknown:
        raise ValueError(f"unknown output kind(s) {unknown}: image or one of {EXTRA_KINDS}")
    wanted = tuple(k for k in EXTRA_KINDS if k in kinds)
    spectral = "image" in kinds or any(k not in FUNCTIONAL_KINDS for k in wanted)
    a = _analyse(y, sr, cfg) if spectral else None
    out: dict = {}
    if "image" in kinds:
        out["image"] = _encode_image(a, cfg)[0]
    out.update(extras(y, sr, dataclasses.replace(cfg, extra=wanted), a, speech, recording))
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_name(dataset_display: str, label: str, utt_id: str, suffix: str = "") -> str:
    """"RAVDESS", "angry", "03-01-05-01-01-01-12" -> "RAVDESS_Angry_03-01-05-01-01-01-12.png" (suffix before .png)."""
    utt = _UNSAFE.sub("-", str(utt_id)).strip("-") or "x"
    return f"{dataset_display}_{str(label).capitalize()}_{utt}{suffix}.png"
