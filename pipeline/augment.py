"""Waveform augmentation for oversampled training copies (audiomentations underneath).

Like audiomentations, each transform keeps its parameters in one place and separates
`sample` (draw this copy's parameters from a seeded generator) from `apply` (deterministic given
those parameters). The balance stage samples and records the parameters in the render plan, so
every augmented image can be traced to exactly what was done to it; render applies them to the
standardised source (mono, trimmed, resampled, peak-normalised), so a copy is trimmed exactly like
its original and its noise is relative to the speech (an SNR), whatever the recording's level: a
fixed noise amplitude added before trimming left quiet sources' copies untrimmed and noisy, an
artefact only the (minority) classes that get copies carried.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from pipeline.params import number, section
from pipeline.seeding import stable_seed


def item_seed(seed: int, item_id: str) -> int:
    """Stable per-item seed: each copy's draw depends only on the seed and its own id."""
    return stable_seed(seed, item_id)


@dataclass(frozen=True)
class TimeStretch:
    p: float = 1.0
    min_rate: float = 0.8
    max_rate: float = 1.2
    name = "time_stretch"

    def sample(self, rng: np.random.Generator) -> dict | None:
        if rng.random() >= self.p:
            return None
        return {"rate": round(float(rng.uniform(self.min_rate, self.max_rate)), 4)}

    def apply(self, samples: np.ndarray, sr: int, params: dict) -> np.ndarray:
        from audiomentations import TimeStretch as Impl

        # Keep the stretched length: standardise trims and pads to the window afterwards.
        t = Impl(min_rate=params["rate"], max_rate=params["rate"], leave_length_unchanged=False, p=1.0)
        return _frozen(t, {"should_apply": True, "rate": params["rate"]}, samples, sr)


@dataclass(frozen=True)
class PitchShift:
    p: float = 1.0
    min_semitones: float = -2.0
    max_semitones: float = 2.0
    name = "pitch_shift"

    def sample(self, rng: np.random.Generator) -> dict | None:
        if rng.random() >= self.p:
            return None
        return {"semitones": round(float(rng.uniform(self.min_semitones, self.max_semitones)), 3)}

    def apply(self, samples: np.ndarray, sr: int, params: dict) -> np.ndarray:
        from audiomentations import PitchShift as Impl

        s = params["semitones"]
        t = Impl(min_semitones=s, max_semitones=s, p=1.0)
        return _frozen(t, {"should_apply": True, "num_semitones": s}, samples, sr)


@dataclass(frozen=True)
class GaussianNoise:
    """White noise at a signal-to-noise ratio drawn uniformly in dB (audiomentations' AddGaussianSNR):
    noise RMS = signal RMS / 10^(snr/20), so quiet and loud recordings get the same relative noise."""

    p: float = 1.0
    min_snr_db: float = 15.0
    max_snr_db: float = 30.0
    name = "gaussian_noise"

    def sample(self, rng: np.random.Generator) -> dict | None:
        if rng.random() >= self.p:
            return None
        return {"snr_db": round(float(rng.uniform(self.min_snr_db, self.max_snr_db)), 2),
                "noise_seed": int(rng.integers(0, 2**31 - 1))}

    def apply(self, samples: np.ndarray, sr: int, params: dict) -> np.ndarray:
        from audiomentations import AddGaussianSNR as Impl
        from audiomentations.core.utils import calculate_desired_noise_rms, calculate_rms

        snr = params["snr_db"]
        t = Impl(min_snr_db=snr, max_snr_db=snr, p=1.0)
        noise_std = float(calculate_desired_noise_rms(calculate_rms(samples), snr))
        # audiomentations draws the noise from numpy's global generator: seed it for this copy only.
        state = np.random.get_state()
        np.random.seed(params["noise_seed"])
        try:
            return _frozen(t, {"should_apply": True, "noise_std": noise_std}, samples, sr)
        finally:
            np.random.set_state(state)


def _frozen(transform, parameters: dict, samples: np.ndarray, sr: int) -> np.ndarray:
    transform.parameters = parameters
    transform.freeze_parameters()
    return np.asarray(transform(samples=np.ascontiguousarray(samples, dtype=np.float32), sample_rate=sr),
                      dtype=np.float32)


class Augmenter:
    """The chain: time-stretch -> pitch-shift -> noise, in that order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    @classmethod
    def from_params(cls, params: dict) -> "Augmenter":
        aug = section(params, "augment", keys=("time_stretch", "pitch_shift", "gaussian_noise"))
        ts = section(aug, "time_stretch", prefix="augment", keys=("p", "min_rate", "max_rate"))
        ps = section(aug, "pitch_shift", prefix="augment", keys=("p", "min_semitones", "max_semitones"))
        gn = section(aug, "gaussian_noise", prefix="augment", keys=("p", "min_snr_db", "max_snr_db"),
                     retired={"amplitude": "replaced by min_snr_db / max_snr_db: noise is now relative to the "
                                           "signal (e.g. 15 and 30 dB)"})
        t1 = TimeStretch(p=number(ts, "p", "augment.time_stretch", 1.0, lo=0, hi=1),
                         min_rate=number(ts, "min_rate", "augment.time_stretch", 0.8, lo=0.1, hi=10),
                         max_rate=number(ts, "max_rate", "augment.time_stretch", 1.2, lo=0.1, hi=10))
        t2 = PitchShift(p=number(ps, "p", "augment.pitch_shift", 1.0, lo=0, hi=1),
                        min_semitones=number(ps, "min_semitones", "augment.pitch_shift", -2.0, lo=-12, hi=12),
                        max_semitones=number(ps, "max_semitones", "augment.pitch_shift", 2.0, lo=-12, hi=12))
        from pipeline.errors import ParamsError

        t3 = GaussianNoise(p=number(gn, "p", "augment.gaussian_noise", 1.0, lo=0, hi=1),
                           min_snr_db=number(gn, "min_snr_db", "augment.gaussian_noise", 15.0, lo=-20, hi=100),
                           max_snr_db=number(gn, "max_snr_db", "augment.gaussian_noise", 30.0, lo=-20, hi=100))
        if t1.min_rate > t1.max_rate:
            raise ParamsError("augment.time_stretch.min_rate", "must be <= max_rate")
        if t2.min_semitones > t2.max_semitones:
            raise ParamsError("augment.pitch_shift.min_semitones", "must be <= max_semitones")
        if t3.min_snr_db > t3.max_snr_db:
            raise ParamsError("augment.gaussian_noise.min_snr_db", "must be <= max_snr_db")
        return cls([t1, t2, t3])

    def sample(self, seed: int, item_id: str) -> dict:
        rng = np.random.default_rng(item_seed(seed, item_id))
        chosen = {}
        for t in self.transforms:
            drawn = t.sample(rng)
            if drawn is not None:
                chosen[t.name] = drawn
        return chosen

    def apply(self, samples: np.ndarray, sr: int, chosen: dict) -> np.ndarray:
        """samples: mono float32 1-D. Applies exactly the recorded parameters."""
        for t in self.transforms:
            if t.name in chosen:
                samples = t.apply(samples, sr, chosen[t.name])
        return samples

    def describe(self) -> dict:
        return {t.name: asdict(t) for t in self.transforms}


def apply_recorded(samples: np.ndarray, sr: int, recorded: str, peak: float | None = None) -> np.ndarray:
    """Apply an augmentation recorded in the render plan (JSON); '' means none. `samples`: the standardised
    source. `peak`: rescale the result to this peak (1.0 when the originals are peak-normalised, so a copy's
    level matches theirs: stretching, shifting and noise move the peak a little)."""
    if not recorded or samples.size == 0:
        return samples
    y = Augmenter([TimeStretch(), PitchShift(), GaussianNoise()]).apply(samples, sr, json.loads(recorded))
    top = float(np.max(np.abs(y))) if y.size else 0.0
    if peak is not None and top > 0:
        y = y * np.float32(peak / top)
    return np.ascontiguousarray(y, dtype=np.float32)
