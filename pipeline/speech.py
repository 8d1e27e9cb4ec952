"""A render-plan item's speech: its file read and standardised (pipeline.audio), then its recorded augmentation
applied if it is a training copy (pipeline.augment). Render's workers start from this; the render cache's code
fingerprint covers this module (pipeline/render_cache.py CODE)."""
from __future__ import annotations

import numpy as np

from pipeline import audio


def speech_of(path, cfg: audio.AudioConfig, augmentation: str = "",
              recording: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The file read and prepared (mono, trimmed, resampled, peak-normalised), then its recorded augmentation
    (a JSON record of the render plan; '' for an original); not yet fitted to the window (audio.fit does that).
    The utterance functionals are taken over this, the spectrogram over its fitted window. Augmenting after the
    trim cuts a copy exactly like its original, whatever the recording's level. `recording`: the file as
    recording_of read it, so that a caller who needs both reads it once."""
    samples, sr = recording if recording is not None else audio.read(path)
    y = audio.prepare(samples, sr, cfg)
    if augmentation:
        from pipeline.augment import apply_recorded

        y = apply_recorded(y, cfg.sample_rate, augmentation, peak=1.0 if cfg.peak_normalise else None)
    return y


def recording_of(path) -> tuple[np.ndarray, int]:
    """The file as read: mono samples at its own rate, nothing else done (features.RECORDING_KINDS)."""
    samples, sr = audio.read(path)
    return audio.mono(samples), int(sr)
