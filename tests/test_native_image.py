"""The native spectrogram image: 16-bit PNG at n_mels x frames on a fixed dB scale, recorded with the shards."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline import features
from pipeline.errors import ParamsError

CFG = dict(image="native", n_mels=32, n_fft=512, hop_length=160)


def tone(seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return np.concatenate([np.zeros(4000), y, np.zeros(4000)]).astype(np.float32)  # padding on both sides


@pytest.mark.parametrize("channels, planes", [("gray", 1), ("delta", 3)])
def test_encode_decode_round_trips_within_the_quantisation_step(channels, planes):
    cfg = features.FeatureConfig(channels=channels, **CFG)
    y = tone()
    rendered = features.render(y, 16000, cfg)
    raw = features.decode_png(rendered.png)
    assert raw.dtype == np.uint16 and raw.shape == rendered.shape == cfg.native_shape(len(y))
    scale = features.image_scale(cfg)
    assert list(scale) == ["static", "delta", "delta2"][:planes]
    back = features.image_values(raw, scale)
    exact = features.native_planes(features._analyse(y, 16000, cfg).db_abs, cfg)
    steps = np.array([(hi - lo) / 65535 for lo, hi in scale.values()], dtype=np.float32)
    assert np.all(np.abs(back - exact) <= steps)  # within one quantisation step per plane
    # padding is exactly the floor of the scale; speech is far above it; low frequencies at the bottom
    floor = features.image_floor(scale)
    assert floor == -100.0 and back[:, 0, 0].max() == floor and back[:, raw.shape[1] // 2, 0].max() > -60


def test_gray_native_images_open_as_16_bit_in_any_reader():
    cfg = features.FeatureConfig(channels="gray", **CFG)
    png = features.render(tone(), 16000, cfg).png
    with Image.open(io.BytesIO(png)) as img:
        assert img.mode.startswith("I") and img.size == (cfg.native_shape(len(tone()))[1], 32)
        np.testing.assert_array_equal(np.asarray(img).astype(np.uint16), features.decode_png(png)[:, :, 0])


def test_the_scale_is_fixed_not_per_image():
    """A quieter copy of a clip gets lower values (on a per-image min-max scale both would look the same)."""
    cfg = features.FeatureConfig(channels="gray", **CFG)
    loud = features.image_values(features.decode_png(features.render(tone(), 16000, cfg).png),
                                 features.image_scale(cfg))
    quiet = features.image_values(features.decode_png(features.render(tone() * 0.1, 16000, cfg).png),
                                  features.image_scale(cfg))
    speech = loud > -60  # bins well above the floor in both copies
    np.testing.assert_allclose((loud - quiet)[speech].mean(), 20.0, atol=0.05)  # 20 dB quieter


def test_native_images_hold_levels_not_colours():
    with pytest.raises(ParamsError, match="features.channels"):
        features.FeatureConfig.from_params({"features": {"image": "native", "channels": "colormap"}})
    with pytest.raises(ParamsError, match="features.image"):
        features.FeatureConfig.from_params({"features": {"image": "16bit"}})
