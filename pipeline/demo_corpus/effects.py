"""Signal-level cues of the acted emotions (harshness, lilt, smile, breathiness, tremor, creak, a gasp) and
the trim of eSpeak's silences, applied with numpy after synthesis."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

# Everything is float32 and slice arithmetic: numpy's float64 transcendental functions,
# np.interp, np.convolve and FFTs cost milliseconds per utterance, and importing scipy.signal costs seconds per
# worker. Noise comes from fixed tables read at a per-utterance random offset.

_NOISE_LEN = 1 << 18  # about 12 s at 22050 Hz


@lru_cache(maxsize=1)
def _noise_tables() -> tuple[np.ndarray, np.ndarray]:
    """(white, breath): unit-RMS Gaussian noise, and the same through (1 + z^-1)^2 (1 - z^-1), an
    aspiration-like band with a broad peak near sr / 6. Fixed seed: identical in every process."""
    w = np.random.default_rng(20240607).standard_normal(_NOISE_LEN + 3).astype(np.float32)
    b = w[3:] + w[2:-1] - w[1:-2] - w[:-3]
    return w[3:], b / np.sqrt(np.mean(b * b))


def _noise(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    table = _noise_tables()[kind]
    if n > len(table):
        table = np.tile(table, -(-n // len(table)))
    start = int(rng.integers(0, len(table) - n + 1))
    return table[start:start + n]


def _box(x: np.ndarray, w: int) -> np.ndarray:
    """Moving average over w samples: a cheap low-pass (first null at sr / w)."""
    y = x.copy()
    for i in range(1, w):
        y[i:] += x[:-i]
    return y * np.float32(1.0 / w)


def _envelope(x: np.ndarray, block: int = 256) -> np.ndarray:
    """Amplitude envelope: RMS per block of 256 samples (about 12 ms), held over the block."""
    n = len(x)
    m = -(-n // block)
    padded = np.zeros(m * block, np.float32)
    padded[:n] = x
    rms = np.sqrt(np.mean(padded.reshape(m, block) ** 2, axis=1))
    return np.repeat(rms.astype(np.float32), block)[:n]


def _sine(n: int, sr: int, hz: float, phase: float) -> np.ndarray:
    """sin(2 pi hz t + phase) in float32 (exact enough for the few hundred radians an utterance spans)."""
    return np.sin(np.arange(n, dtype=np.float32) * np.float32(2 * np.pi * hz / sr) + np.float32(phase))


def _read_at(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x at fractional sample positions `pos`, linearly interpolated."""
    n = len(x)
    pos = np.clip(pos, 0, n - 1)
    i0 = np.minimum(pos.astype(np.int32), n - 2)
    frac = pos - i0
    return x.take(i0) * (1 - frac) + x.take(i0 + 1) * frac


def _vibrato(x: np.ndarray, sr: int, hz: float, depth: float, phase: float) -> np.ndarray:
    """Pitch (and formants) swinging by +-depth (relative) at `hz`: a sinusoidal time warp."""
    shift = _sine(len(x), sr, hz, phase) * np.float32(depth / (2 * np.pi * hz) * sr)
    return _read_at(x, np.arange(len(x), dtype=np.float32) + shift)


def _apply_effects(x: np.ndarray, sr: int, effects, rng: np.random.Generator) -> np.ndarray:
    """Signal-level cues on float32 audio whose peak is 1."""
    for name, amount in effects:
        k = amount * rng.uniform(0.85, 1.15)
        n = len(x)
        if name == "harsh":  # strained, pressed voice: tilt up, then soft-clip hard
            y = 2.0 * x
            y[1:] -= 1.3 * x[:-1]
            drive = 4.0 * k
            x = np.tanh(y * np.float32(drive / (np.max(np.abs(y)) + 1e-9))) * np.float32(1 / np.tanh(drive))
        elif name == "lilt":  # sing-song: a slow 2.5-3.5 Hz pitch undulation (time warp), no tremor in loudness
            f = rng.uniform(2.5, 3.5)
            depth = 0.07 * k
            x = _vibrato(x, sr, f, depth, rng.uniform(0, 2 * np.pi))
        elif name == "smile":  # spread lips shorten the vocal tract: every frequency up about 9 % (resampled)
            r = 1.0 + 0.09 * k
            x = _read_at(x, np.arange(int((n - 1) / r), dtype=np.float32) * np.float32(r))
        elif name == "bright":  # smiling: a high-frequency lift
            y = np.float32(1.0 + 0.8 * k) * x
            y[1:] -= np.float32(0.6 * k) * x[:-1]
            x = y
        elif name == "breathy":  # aspiration noise following the speech envelope, darker voice
            mix = np.float32(min(1.0, 0.7 * k))
            noise = _noise(1, n, rng) * _envelope(x) * np.float32(0.9 * k)
            x = (1 - mix) * x + mix * _box(x, 4) + noise
        elif name == "tremor":  # 6-8 Hz vibrato (time warp) plus amplitude tremor
            f = rng.uniform(6.0, 8.0)
            depth = 0.045 * k  # relative pitch deviation
            x = _vibrato(x, sr, f, depth, rng.uniform(0, 2 * np.pi))
            am = _sine(n, sr, f * rng.uniform(0.9, 1.1), rng.uniform(0, 2 * np.pi))
            x = x * (np.float32(1 - 0.225 * k) - np.float32(0.225 * k) * am)
        elif name == "creak":  # vocal fry: irregular low-rate pulsing, muffled
            f0 = rng.uniform(35.0, 50.0)
            # phase in cycles: f0 t plus two slow wobbles (the pulse rate drifts by about +-25 %)
            cycles = np.arange(n, dtype=np.float32) * np.float32(f0 / sr)
            for _ in range(2):
                g = rng.uniform(2.0, 5.0)
                cycles += np.float32(0.125 * f0 / (2 * np.pi * g)) * _sine(n, sr, g, rng.uniform(0, 2 * np.pi))
            pulse = np.float32(0.5) + np.float32(0.5) * np.cos(np.float32(2 * np.pi) * cycles)
            d = np.float32(0.75 * min(k, 1.2))
            x = _box(x * ((1 - d) + d * pulse * pulse * pulse), 5)
        elif name == "gasp":  # a short inhaled "h" before the sentence
            g = int(sr * rng.uniform(0.16, 0.22))
            pause = np.zeros(int(sr * rng.uniform(0.06, 0.10)), np.float32)
            shape = (np.sin(np.linspace(0, np.pi, g)) ** 2 * np.linspace(0.6, 1.0, g) * 0.22 * k).astype(np.float32)
            x = np.concatenate([_noise(1, g, rng) * shape, pause, x])
        else:
            raise ValueError(f"unknown effect {name!r}")
    return x.astype(np.float32, copy=False)


def _trim(x: np.ndarray, sr: int, margin: float = 0.08, threshold: float = 0.01) -> np.ndarray:
    """Cut eSpeak's leading / trailing silence down to `margin` seconds."""
    loud = np.flatnonzero(np.abs(x) > threshold * (np.max(np.abs(x)) + 1e-9))
    if not len(loud):
        return x
    pad = int(margin * sr)
    return x[max(0, loud[0] - pad): loud[-1] + pad + 1]
