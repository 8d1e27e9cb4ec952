"""Augmented training copies are made from the standardised source: trimmed like their originals whatever
the recording's level, with noise relative to the speech (SNR), byte-identical on every run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from pipeline import audio
from pipeline.audio import AudioConfig
from pipeline.augment import Augmenter, apply_recorded
from pipeline.render import item_audio

SR = 22050
CFG = AudioConfig.from_params({"audio": {"sample_rate": 16000, "duration": 3.0, "top_db": 30.0,
                                         "peak_normalise": True}})
AUGMENT = {"augment": {"time_stretch": {"p": 1.0, "min_rate": 0.8, "max_rate": 1.2},
                       "pitch_shift": {"p": 1.0, "min_semitones": -2, "max_semitones": 2},
                       "gaussian_noise": {"p": 1.0, "min_snr_db": 15, "max_snr_db": 30}}}
NOISE_ONLY = {"augment": {"time_stretch": {"p": 0.0}, "pitch_shift": {"p": 0.0},
                          "gaussian_noise": {"p": 1.0, "min_snr_db": 15, "max_snr_db": 30}}}


def utterance(level: float) -> np.ndarray:
    """1 s of silence, 1.5 s of a voiced-like harmonic tone with a syllable envelope, 1 s of silence."""
    t = np.arange(int(1.5 * SR)) / SR
    voiced = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    voiced *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    y = np.concatenate([np.zeros(SR), voiced, np.zeros(SR)])
    return (level * y / np.max(np.abs(y))).astype(np.float32)


def span(y: np.ndarray) -> int:
    """Samples from the first to the last non-zero one: the speech the window holds, padding excluded."""
    nz = np.flatnonzero(y)
    return int(nz[-1] - nz[0] + 1)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("src")
    out = {}
    for name, level in (("quiet", 0.01), ("loud", 0.9)):
        path = root / f"{name}.wav"
        sf.write(path, utterance(level), SR, subtype="FLOAT")
        out[name] = str(path)
    return out


def test_a_copy_is_trimmed_like_its_original_whatever_the_level(sources):
    # Noise added at a fixed amplitude before the trim left a quiet source's copy untrimmed (noise
    # everywhere, a full window) while its original was cut to the speech: "noisy and untrimmed" then
    # marked the classes that get copies.
    recorded = Augmenter.from_params(AUGMENT).sample(1, "x_aug01")
    rate = recorded["time_stretch"]["rate"]
    copies = {}
    for name, path in sources.items():
        trimmed = len(audio.prepare(*audio.read(path), CFG))  # the speech and the trim's frame margins
        original = item_audio({"path": path, "augmentation": ""}, CFG)
        copy = item_audio({"path": path, "augmentation": json.dumps(recorded)}, CFG)
        assert abs(span(original) - 1.5 * CFG.sample_rate) < 0.1 * CFG.sample_rate  # the trimmed speech
        assert abs(trimmed - 1.5 * CFG.sample_rate) < 0.15 * CFG.sample_rate
        assert abs(span(copy) - trimmed / rate) <= 2, (name, span(copy), trimmed, rate)  # noise fills the margins
        assert np.max(np.abs(copy)) == pytest.approx(1.0) == np.max(np.abs(original))
        copies[name] = copy
    np.testing.assert_allclose(copies["quiet"], copies["loud"], atol=1e-3)  # the level makes no difference


@pytest.mark.parametrize("level", [0.01, 0.9])
def test_noise_is_relative_to_the_signal(level):
    y = utterance(level)[SR:-SR]  # the speech only, as after the trim
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2))
    augmenter = Augmenter.from_params(NOISE_ONLY)
    for k in range(6):
        recorded = augmenter.sample(5, f"item_aug{k:02d}")
        noisy = apply_recorded(y, SR, json.dumps(recorded))
        noise = noisy.astype(np.float64) - y
        snr = 20 * np.log10(rms / np.sqrt(np.mean(noise ** 2)))
        assert 15 <= recorded["gaussian_noise"]["snr_db"] <= 30
        assert snr == pytest.approx(recorded["gaussian_noise"]["snr_db"], abs=0.2)
        assert apply_recorded(y, SR, json.dumps(recorded)).tobytes() == noisy.tobytes()
