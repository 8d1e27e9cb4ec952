"""Reading, checking and standardising audio: the one implementation shared by ingest, render and predict.

Never imports TensorFlow/Keras (data workers must start fast). Heavy audio libraries are imported lazily.

    probe(path)        header facts from the file's content (AIFF behind a .wav name works)
    read(path)         float32 (frames, channels) + sample rate; AudioFormatError on bad data
    check(...)         the reason to quarantine a readable file (empty, too short, silent) or None
    standardise(...)   mono, trimmed, resampled, peak-normalised, padded/centre-cut to a fixed length
    windows(...)       the same, but a long recording is cut into overlapping fixed-length windows (predict)
"""
from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.params import boolean, number, section


class AudioFormatError(Exception):
    """A file that cannot be used; str(exc) is a short reason for the quarantine report."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# ---------------------------------------------------------------------------------------------- reading

# libsndfile's header log reports a chunk that claims more bytes than the file holds as
# "data : 32000 (should be 15978)". Streaming writers leave placeholder sizes: those are not truncation.
_SHOULD_BE = re.compile(r"^\s*(data|SSND|Data Size|riff|Riff size)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)
_PLACEHOLDERS = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF}
_BYTES_PER_SAMPLE = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _short(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    # soundfile: "Error opening 'path': Format not recognised." -> drop the path, the report has it
    text = re.sub(r"^Error opening .*?: ", "", text)
    return (text or type(exc).__name__)[:200]


def _missing_bytes(extra_info: str) -> int:
    """Bytes a chunk header promises beyond the end of the file (0 when none or a placeholder)."""
    missing = 0
    for _, claimed, actual in _SHOULD_BE.findall(extra_info or ""):
        claimed, actual = int(claimed), int(actual)
        if claimed in _PLACEHOLDERS or claimed <= actual:
            continue
        missing = max(missing, claimed - actual)
    return missing


@contextmanager
def _quiet():
    """audioread imports aifc/audioop/sunau (deprecated since Python 3.11) when it opens a file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _audioread_info(path) -> dict | None:
    """Header facts for formats libsndfile cannot open (e.g. m4a), via audioread when it can."""
    try:
        with _quiet():
            import audioread

            with audioread.audio_open(str(path)) as f:
                return {"format": "AUDIOREAD", "subtype": type(f).__name__, "samplerate": int(f.samplerate),
                        "channels": int(f.channels), "frames": int(round(f.duration * f.samplerate)),
                        "duration": float(f.duration)}
    except Exception:
        return None


def _header(f, path: Path) -> dict:
    """Facts from an open soundfile.SoundFile; AudioFormatError for header-only or truncated files."""
    out = {"format": f.format, "subtype": f.subtype, "samplerate": int(f.samplerate),
           "channels": int(f.channels), "frames": int(f.frames),
           "duration": f.frames / float(f.samplerate) if f.samplerate else 0.0}
    if out["samplerate"] <= 0 or out["channels"] <= 0:
        raise AudioFormatError(f"unreadable: bad header (rate {out['samplerate']}, channels {out['channels']})")
    if out["frames"] <= 0:
        raise AudioFormatError("unreadable: header only, no audio data")
    missing = _missing_bytes(f.extra_info)
    if missing >= _BYTES_PER_SAMPLE.get(out["subtype"], 1) * out["channels"]:  # a lost pad byte is no loss
        raise AudioFormatError(f"truncated: header promises {missing} more bytes than the file holds")
    return out


def _open(path):
    """(open soundfile.SoundFile or None, header dict): None means libsndfile cannot open it but audioread can."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioFormatError("unreadable: file not found")
    if path.stat().st_size == 0:
        raise AudioFormatError("unreadable: 0-byte file")
    try:
        f = sf.SoundFile(str(path))  # libsndfile sniffs the format from the content, not the name
    except Exception as exc:  # LibsndfileError (a RuntimeError) for text, malformed, unknown formats
        fallback = _audioread_info(path)
        if fallback is None or fallback["frames"] <= 0:
            raise AudioFormatError(f"unreadable: {_short(exc)}") from None
        return None, fallback
    try:
        return f, _header(f, path)
    except BaseException:
        f.close()
        raise


def probe(path) -> dict:
    """Header facts (format, subtype, samplerate, channels, frames, duration) read from the content.

    libsndfile sniffs the format from the bytes, not the file name, so AIFF data behind a .wav name
    is reported as AIFF. Raises AudioFormatError("unreadable: ...") for 0-byte, non-audio and header-only
    files, and AudioFormatError("truncated: ...") when the header promises more data than the file holds.
    """
    f, info = _open(path)
    if f is not None:
        f.close()
    return info


def _read_audioread(path) -> tuple[np.ndarray, int]:
    with _quiet():
        import audioread

        with audioread.audio_open(str(path)) as f:
            sr, channels = int(f.samplerate), int(f.channels)
            chunks = [np.frombuffer(buf, dtype="<i2") for buf in f]
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype="<i2")
    data = (data.astype(np.float32) / 32768.0).reshape(-1, max(channels, 1))
    return data, sr


# Integer PCM is read as integers and scaled here: libsndfile's own int -> float conversion is ~3x slower.
_INT_READS = {"PCM_S8": ("int16", 1.0 / 32768), "PCM_U8": ("int16", 1.0 / 32768), "PCM_16": ("int16", 1.0 / 32768),
              "PCM_24": ("int32", 1.0 / 2147483648), "PCM_32": ("int32", 1.0 / 2147483648)}


def read(path) -> tuple[np.ndarray, int]:
    """Samples as float32 (frames, channels) in [-1, 1] whatever the bit depth, plus the sample rate.

    soundfile (libsndfile) first: WAV/AIFF/FLAC/OGG/MP3 and more, 8-bit unsigned to 32-bit float; audioread
    only for formats libsndfile cannot open. Raises AudioFormatError: "unreadable: ..." (not audio, 0 bytes,
    header only), "truncated: ..." (fewer frames than the header says, or a decode error midway),
    "non-finite samples" (NaN/inf in float data).
    """
    f, info = _open(path)  # raises unreadable / truncated (header)
    if f is None:
        try:
            data, sr = _read_audioread(path)
        except Exception as exc:
            raise AudioFormatError(f"unreadable: {_short(exc)}") from None
    else:
        sr, expected = info["samplerate"], info["frames"]
        as_int = _INT_READS.get(info["subtype"])
        try:
            with f:
                data = f.read(dtype=as_int[0] if as_int else "float32", always_2d=True)
        except Exception as exc:  # a decode error midway (FLAC lost sync, short read)
            raise AudioFormatError(f"truncated: {_short(exc)}") from None
        if data.shape[0] < expected:
            raise AudioFormatError(f"truncated: read {data.shape[0]} of {expected} frames")
        if as_int:  # same values as libsndfile's float conversion (x / 2^15 or x / 2^31), 3x faster
            data = data.astype(np.float32)
            data *= np.float32(as_int[1])
    if data.size == 0:
        raise AudioFormatError("unreadable: header only, no audio data")
    if not np.isfinite(data).all():
        raise AudioFormatError("non-finite samples")
    return np.ascontiguousarray(data, dtype=np.float32), sr


def read_blocks(path, seconds: float = 30.0) -> tuple[int, float, object]:
    """(sample rate, duration in s from the header, an iterator of mono float32 blocks of `seconds`): the recording
    as read() and mono() make it, a block at a time, so a long recording never sits in memory whole (predict
    --segments). Raises AudioFormatError as read() does, for a bad header at once, for bad data (truncated,
    non-finite) when the block holding it is read. Formats only audioread opens are read whole first."""
    f, info = _open(path)
    sr = int(info["samplerate"])
    if f is None:
        try:
            data, sr = _read_audioread(path)
        except Exception as exc:
            raise AudioFormatError(f"unreadable: {_short(exc)}") from None
        n = max(1, int(seconds * sr))
        return sr, data.shape[0] / sr, (mono(data[i:i + n]) for i in range(0, data.shape[0], n))

    def blocks():
        n = max(1, int(seconds * sr))
        as_int = _INT_READS.get(info["subtype"])
        got = 0
        with f:
            while True:
                try:
                    data = f.read(frames=n, dtype=as_int[0] if as_int else "float32", always_2d=True)
                except Exception as exc:  # a decode error midway (FLAC lost sync, short read)
                    raise AudioFormatError(f"truncated: {_short(exc)}") from None
                if data.shape[0] == 0:
                    break
                got += data.shape[0]
                if as_int:  # scaled as read() scales it: the same samples
                    data = data.astype(np.float32)
                    data *= np.float32(as_int[1])
                yield mono(data)  # AudioFormatError on non-finite samples
        if got < info["frames"]:
            raise AudioFormatError(f"truncated: read {got} of {info['frames']} frames")

    return sr, info["frames"] / sr, blocks()


def peak_dbfs(samples: np.ndarray) -> float:
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def check(samples: np.ndarray, sr: int, min_duration: float, silence_dbfs: float) -> str | None:
    """The reason to quarantine a readable recording, or None when it is usable."""
    frames = samples.shape[0] if samples.ndim else 0
    if samples.size == 0 or frames == 0:
        return "empty"
    duration = frames / float(sr)
    if duration < min_duration:
        return f"too short ({duration:.3f} s < {min_duration:g} s)"
    if not np.isfinite(samples).all():
        return "non-finite samples"
    level = peak_dbfs(samples)
    if level < silence_dbfs:
        return f"silent (peak {level:.1f} dBFS < {silence_dbfs:g} dBFS)"
    return None


# ---------------------------------------------------------------------------------------- standardising

@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16000
    duration: float = 3.0
    top_db: float = 30.0
    peak_normalise: bool = True

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    @classmethod
    def from_params(cls, params: dict) -> "AudioConfig":
        """From the params dict (section `audio`; missing keys take the defaults); ParamsError names the bad key."""
        sec = section(params or {}, "audio", keys=("sample_rate", "duration", "top_db", "peak_normalise"))
        d = cls()
        return cls(
            sample_rate=number(sec, "sample_rate", "audio", default=d.sample_rate, lo=1000, hi=384000,
                               integer=True),
            duration=float(number(sec, "duration", "audio", default=d.duration, lo=0, hi=3600, lo_open=True)),
            top_db=float(number(sec, "top_db", "audio", default=d.top_db, lo=0, lo_open=True)),
            peak_normalise=boolean(sec, "peak_normalise", "audio", default=d.peak_normalise),
        )


def mono(samples: np.ndarray) -> np.ndarray:
    """Any (frames,) or (frames, channels) int/float array -> float32 mono in [-1, 1], nothing else done (no
    trim, resampling or level change)."""
    x = np.asarray(samples)
    if x.dtype.kind == "u":  # unsigned PCM is offset binary: 128 is silence for 8-bit
        info = np.iinfo(x.dtype)
        mid = (int(info.max) + 1) / 2.0
        x = (x.astype(np.float32) - mid) / mid
    elif x.dtype.kind == "i":
        x = x.astype(np.float32) / float(-np.iinfo(x.dtype).min)
    elif x.dtype.kind == "b":
        x = x.astype(np.float32)
    else:
        x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    elif x.ndim != 1:
        raise ValueError(f"audio must be (frames,) or (frames, channels), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioFormatError("non-finite samples")
    return np.ascontiguousarray(x, dtype=np.float32)


_TRIM_FRAME, _TRIM_HOP = 2048, 512


def frame_sums(x: np.ndarray, frame_length: int, hop_length: int, n_frames: int) -> np.ndarray:
    """Sums of x over frames [i*hop, i*hop + frame_length), i < n_frames (x zero-extended as needed), float64.

    When frame_length is a multiple of hop (the usual 4x overlap) this sums hop-sized blocks once and adds
    neighbouring block sums: O(samples) with vectorised block sums, far cheaper than framing the signal.
    """
    total = (n_frames - 1) * hop_length + frame_length
    if x.shape[0] < total:
        x = np.concatenate([x, np.zeros(total - x.shape[0], dtype=x.dtype)])
    if frame_length % hop_length == 0:
        k = frame_length // hop_length
        blocks = x[:(n_frames + k - 1) * hop_length].reshape(-1, hop_length).sum(axis=1, dtype=np.float64)
    else:
        k, blocks = frame_length, x[:total].astype(np.float64)  # unit blocks, hop > 1: stride below
    csum = np.empty(blocks.shape[0] + 1, dtype=np.float64)
    csum[0] = 0.0
    np.cumsum(blocks, out=csum[1:])
    step = 1 if frame_length % hop_length == 0 else hop_length
    starts = np.arange(n_frames) * step
    return csum[starts + k] - csum[starts]


def trim_bounds(y: np.ndarray, top_db: float, frame_length: int = _TRIM_FRAME,
                hop_length: int = _TRIM_HOP) -> tuple[int, int]:
    """Start and end sample of the non-silent part, as librosa.effects.trim(y, top_db) computes them.

    Frame energy (mean square over centred, zero-padded frames) relative to the loudest frame; frames
    more than top_db below it are silence.
    """
    n = y.shape[0]
    if n == 0:
        return 0, 0
    half = frame_length // 2
    n_frames = 1 + n // hop_length  # librosa: 1 + (n + 2*half - frame_length) // hop for even frame_length
    sq = np.zeros(n + 2 * half, dtype=np.float32)
    np.square(y, out=sq[half:half + n])
    mse = frame_sums(sq, frame_length, hop_length, n_frames) / frame_length
    ref = mse.max()
    if ref <= 0:
        return 0, 0
    # librosa: power_to_db(mse, ref=max, amin=1e-10) > -top_db
    db = 10.0 * np.log10(np.maximum(mse, 1e-10)) - 10.0 * np.log10(max(ref, 1e-10))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return 0, 0
    start = int(loud[0] * hop_length)
    end = int(min(n, (loud[-1] + 1) * hop_length))
    return start, end


def prepare(samples: np.ndarray, sr: int, cfg: AudioConfig) -> np.ndarray:
    """Downmix to mono, trim leading/trailing silence, resample to cfg.sample_rate (soxr HQ), peak-normalise.

    Trimming (frames more than cfg.top_db below the loudest one, as librosa.effects.trim) runs at the input
    rate with frames scaled to span what 2048/512 samples span at cfg.sample_rate, so the cut is the same
    whatever the input rate, and only the kept part is resampled. The trim threshold is relative, so
    normalising first or last gives the same cut; normalising last makes the output peak exactly 1.0
    (a resampler can overshoot a little). The result is float32 of any length (empty when all silent).
    """
    y = mono(samples)
    sr = int(sr)
    if sr <= 0:
        raise ValueError(f"bad sample rate {sr}")
    if y.shape[0] == 0:
        return y
    hop = max(1, int(round(_TRIM_HOP * sr / cfg.sample_rate)))
    start, end = trim_bounds(y, cfg.top_db, frame_length=hop * (_TRIM_FRAME // _TRIM_HOP), hop_length=hop)
    y = y[start:end]
    if sr != cfg.sample_rate and y.shape[0] > 0:
        import soxr

        y = soxr.resample(y, sr, cfg.sample_rate, quality="HQ")
    y = np.asarray(y, dtype=np.float32)
    if cfg.peak_normalise and y.shape[0] > 0:
        peak = float(np.max(np.abs(y)))
        if peak > 0:
            y = y * np.float32(1.0 / peak)
    return np.ascontiguousarray(y, dtype=np.float32)


def fit(y: np.ndarray, n: int) -> np.ndarray:
    """Exactly n samples: pad symmetrically with zeros (extra sample at the end) or centre-truncate."""
    m = y.shape[0]
    if m == n:
        return y.astype(np.float32, copy=True)
    if m > n:
        start = (m - n) // 2
        return y[start:start + n].astype(np.float32, copy=True)
    out = np.zeros(n, dtype=np.float32)
    left = (n - m) // 2
    out[left:left + m] = y
    return out


def standardise(samples: np.ndarray, sr: int, cfg: AudioConfig) -> np.ndarray:
    """float32 mono of exactly round(cfg.sample_rate * cfg.duration) samples at cfg.sample_rate."""
    return fit(prepare(samples, sr, cfg), cfg.n_samples)


def windows(samples: np.ndarray, sr: int, cfg: AudioConfig, hop: float = 1.5) -> list[np.ndarray]:
    """Overlapping cfg.duration windows, `hop` seconds apart, each exactly cfg.n_samples long (predict).

    A recording no longer than the window gives one window, identical to standardise(); a longer one is cut
    after the same downmix/trim/resample/normalise, the last window aligned to the end so the tail is scored.
    """
    return cut_windows(prepare(samples, sr, cfg), cfg, hop)


def cut_windows(y: np.ndarray, cfg: AudioConfig, hop: float = 1.5) -> list[np.ndarray]:
    """windows() of an already prepared recording."""
    if hop <= 0:
        raise ValueError(f"hop must be > 0 seconds, got {hop}")
    n = cfg.n_samples
    if y.shape[0] <= n:
        return [fit(y, n)]
    step = max(1, int(round(hop * cfg.sample_rate)))
    last = y.shape[0] - n
    starts = list(range(0, last + 1, step))
    if starts[-1] != last:
        starts.append(last)
    return [y[s:s + n].copy() for s in starts]
