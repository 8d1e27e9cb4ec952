"""The frequency warp (train.augment.freq_warp): a voice's formants scaled as another vocal tract's would be,
on the native image only, reproducibly."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.dataset import SpecAugmentConfig, augment_images, warp_bands
from pipeline.errors import ParamsError
from pipeline.params import load
from pipeline.train import TrainConfig, band_centres

HZ = band_centres({"n_mels": 64, "fmin": 0.0, "fmax": 8000.0})


def formant(band: int, h: int = 64, w: int = 8) -> np.ndarray:
    x = np.zeros((1, h, w, 1), np.float32)
    x[0, band] = 1.0
    return x


def peak_hz(x: np.ndarray) -> float:
    """The centre of mass of the image's spectrum over the bands, in Hz."""
    profile = x[0, :, 0, 0]
    return float((profile * np.asarray(HZ)).sum() / profile.sum())


def test_band_centres_are_the_renders_mel_bands():
    assert len(HZ) == 64 and HZ[0] > 0 and HZ[-1] < 8000.0 and np.all(np.diff(HZ) > 0)
    assert HZ[30] == pytest.approx(1572, abs=1)  # Slaney scale: logarithmic above 1 kHz


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_a_formant_moves_by_the_warp_factor(alpha):
    before = formant(30)
    after = warp_bands(before, np.array([alpha]), HZ)
    assert peak_hz(after) == pytest.approx(alpha * peak_hz(before), rel=0.02)


def test_no_warp_is_the_identity_and_the_top_band_fills_the_edge():
    x = np.random.default_rng(0).normal(size=(2, 64, 8, 1)).astype(np.float32)
    np.testing.assert_array_equal(warp_bands(x, np.array([1.0, 1.0]), HZ), x)
    squeezed = warp_bands(x, np.array([0.9, 0.9]), HZ)  # the top bands read above 8 kHz: the edge band
    np.testing.assert_array_equal(squeezed[:, -1], x[:, -1])


def test_the_warp_is_drawn_from_the_batch_seed_and_spares_the_papers_image():
    cfg = SpecAugmentConfig(time_shift=0.0, noise_std=0.0, freq_warp=0.1, band_hz=HZ)
    x = np.random.default_rng(1).normal(size=(4, 64, 16, 1)).astype(np.float32)
    a = augment_images(x.copy(), cfg, np.random.default_rng([7, 0, 3]), unit_range=False)
    b = augment_images(x.copy(), cfg, np.random.default_rng([7, 0, 3]), unit_range=False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, x)
    image = np.random.default_rng(2).random((4, 64, 64, 3)).astype(np.float32)  # 0..1, resized, colour-mapped
    np.testing.assert_array_equal(augment_images(image.copy(), cfg, np.random.default_rng(0)), image)


def test_the_warp_comes_from_params_and_a_bad_value_names_the_key():
    params = load()
    cfg = TrainConfig.from_params(params)
    assert cfg.augment.band_hz == pytest.approx(HZ)
    params["train"]["augment"]["freq_warp"] = 0.9
    with pytest.raises(ParamsError, match="train.augment.freq_warp"):
        TrainConfig.from_params(params)
