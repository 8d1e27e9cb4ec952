"""pipeline.audio and pipeline.features: bad input is named, every input becomes a fixed-size clip and image."""
from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from pipeline import audio, features
from pipeline.audio import AudioConfig, AudioFormatError
from pipeline.errors import ParamsError
from pipeline.features import FeatureConfig

CFG = AudioConfig()  # 16 kHz, 3.0 s
N = 48000


def tone(seconds: float, sr: int, channels: int = 1, amp: float = 0.5, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    y = amp * np.sin(2 * np.pi * f0 * t) * (1.0 + 0.3 * np.sin(2 * np.pi * 3 * t)) / 1.3
    if channels == 1:
        return y.astype(np.float64)
    return np.stack([y * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)


def write(tmp_path, name, y, sr, **kw):
    path = tmp_path / name
    sf.write(str(path), y, sr, **kw)
    return path


def read_and_standardise(path):
    samples, sr = audio.read(path)
    return audio.standardise(samples, sr, CFG)


# ------------------------------------------------------------------------------------------- standardise

@pytest.mark.parametrize("seconds,sr,channels,subtype", [
    (0.3, 16000, 1, "PCM_16"),     # short: padded
    (7.0, 16000, 1, "PCM_16"),     # long: centre-truncated
    (2.0, 44100, 2, "PCM_16"),     # stereo
    (2.0, 8000, 1, "PCM_16"),      # 8 kHz
    (2.0, 96000, 1, "PCM_24"),     # 96 kHz 24-bit
])
def test_standardised_length(tmp_path, seconds, sr, channels, subtype):
    path = write(tmp_path, "x.wav", tone(seconds, sr, channels), sr, subtype=subtype)
    y = read_and_standardise(path)
    assert y.dtype == np.float32 and y.shape == (N,)
    assert np.isfinite(y).all()
    assert np.abs(y).max() == pytest.approx(1.0, abs=0.02)  # peak-normalised


def test_short_clip_is_centred_and_long_clip_is_centre_cut():
    short = audio.standardise(tone(0.5, 16000), 16000, CFG)
    nz = np.flatnonzero(short)
    assert abs((nz[0] + nz[-1]) / 2 - N / 2) < 200  # symmetric padding
    ramp = np.linspace(0.1, 1.0, 16000 * 5).astype(np.float32)  # nothing to trim, unique samples
    cut = audio.standardise(ramp, 16000, CFG)
    start = (ramp.size - N) // 2
    np.testing.assert_allclose(cut, ramp[start:start + N] / ramp.max(), rtol=1e-6)


def test_trim_removes_leading_and_trailing_silence():
    sr = 16000
    y = np.concatenate([np.zeros(sr), tone(1.0, sr), np.zeros(sr)])
    trimmed = audio.prepare(y, sr, CFG)
    assert 0.9 * sr < trimmed.size < 1.2 * sr


def test_trim_is_the_same_at_every_input_rate():
    lengths = []
    for sr in (8000, 16000, 44100, 96000):
        y = np.concatenate([np.zeros(sr // 2), tone(1.2, sr), np.zeros(sr)])
        lengths.append(audio.prepare(y, sr, CFG).size / CFG.sample_rate)
    assert max(lengths) - min(lengths) < 0.04  # within one trim hop (32 ms)
    assert all(1.1 < s < 1.4 for s in lengths)


@pytest.mark.parametrize("n", [1, 700, 2048, 5000, 48000, 100001])
def test_trim_bounds_match_librosa(n):
    import librosa

    rng = np.random.default_rng(n)
    env = np.r_[np.full(n // 3, 1e-3), np.ones(n - 2 * (n // 3)), np.full(n // 3, 1e-3)]
    y = (rng.standard_normal(n) * env).astype(np.float32)
    _, (start, end) = librosa.effects.trim(y, top_db=30)
    assert audio.trim_bounds(y, 30.0) == (int(start), int(end))


@pytest.mark.parametrize("frame,hop", [(8, 2), (8, 3), (5, 5), (4, 1)])
def test_frame_sums(frame, hop):
    x = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    n_frames = 1 + (50 - 1) // hop
    want = [float(np.sum(x[i * hop:i * hop + frame], dtype=np.float64)) for i in range(n_frames)]
    np.testing.assert_allclose(audio.frame_sums(x, frame, hop, n_frames), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("samples", [
    np.array([0.5], dtype=np.float32),                       # 1 sample
    np.zeros((1, 2), dtype=np.float32),                      # 1 stereo frame of silence
    (tone(1.0, 22050) * 32767).astype(np.int16),             # int16 input
    (tone(1.0, 22050, channels=2) * 2**31 * 0.9).astype(np.int32),
    np.full(22050, 200, dtype=np.uint8),                     # unsigned 8-bit
])
def test_standardise_any_input(samples):
    y = audio.standardise(samples, 22050, CFG)
    assert y.shape == (N,) and y.dtype == np.float32 and np.isfinite(y).all()


def test_int_input_scaled_like_float():
    y = tone(1.0, 16000)
    a = audio.prepare(y.astype(np.float32), 16000, AudioConfig(peak_normalise=False))
    b = audio.prepare((y * 32768).astype(np.int16), 16000, AudioConfig(peak_normalise=False))
    assert np.abs(a - b).max() < 1e-3


def test_windows_for_long_and_short_recordings():
    sr = 16000
    wins = audio.windows(tone(7.0, sr), sr, CFG, hop=1.5)
    assert len(wins) == 4  # starts 0, 1.5, 3.0 and the end-aligned 4.0 s
    assert all(w.shape == (N,) and w.dtype == np.float32 for w in wins)
    short = audio.windows(tone(1.0, sr), sr, CFG)
    assert len(short) == 1
    np.testing.assert_array_equal(short[0], audio.standardise(tone(1.0, sr), sr, CFG))


# ------------------------------------------------------------------------------------------ reading

def test_aiff_behind_wav_name(tmp_path):
    y = tone(1.0, 16000)
    aiff = write(tmp_path, "real.aiff", y, 16000, format="AIFF", subtype="PCM_16")
    fake = tmp_path / "looks_like.wav"
    fake.write_bytes(aiff.read_bytes())
    info = audio.probe(fake)
    assert info["format"] == "AIFF" and info["frames"] == 16000 and info["samplerate"] == 16000
    samples, sr = audio.read(fake)
    assert sr == 16000 and samples.shape == (16000, 1)
    assert np.abs(samples[:, 0] - y).max() < 1e-3


def test_probe_fields(tmp_path):
    path = write(tmp_path, "s.wav", tone(1.5, 44100, channels=2), 44100, subtype="PCM_24")
    info = audio.probe(path)
    assert info == {"format": "WAV", "subtype": "PCM_24", "samplerate": 44100, "channels": 2,
                    "frames": 66150, "duration": pytest.approx(1.5)}


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_bit_depths_read_full_scale(tmp_path, subtype):
    sr = 16000
    y = 0.999 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    path = write(tmp_path, f"{subtype}.wav", y, sr, subtype=subtype)
    samples, got_sr = audio.read(path)
    assert got_sr == sr and samples.dtype == np.float32 and samples.shape == (sr, 1)
    assert np.abs(samples).max() == pytest.approx(1.0, abs=0.02)
    assert abs(float(samples.mean())) < 0.01  # unsigned 8-bit is centred, not offset by 0.5


def _bad_files(tmp_path):
    good = write(tmp_path, "good.wav", tone(1.0, 16000), 16000, subtype="PCM_16").read_bytes()
    files = {
        "zero_bytes.wav": b"",
        "header_only.wav": good[:44],
        "truncated.wav": good[: len(good) // 2],
        "text.wav": b"this is a text file, not audio\n" * 20,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


@pytest.mark.parametrize("name,reason", [
    ("zero_bytes.wav", "unreadable"),
    ("header_only.wav", "unreadable"),
    ("truncated.wav", "truncated"),
    ("text.wav", "unreadable"),
])
def test_bad_files_raise_named_reason(tmp_path, name, reason):
    path = _bad_files(tmp_path)[name]
    for fn in (audio.read, audio.probe):
        with pytest.raises(AudioFormatError) as exc:
            fn(path)
        assert str(exc.value).startswith(reason + ":")
        assert exc.value.reason == str(exc.value)


@pytest.mark.parametrize("fmt,subtype", [("AIFF", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "FLOAT"), ("AU", "PCM_16")])
def test_truncated_uncompressed_formats(tmp_path, fmt, subtype):
    path = write(tmp_path, "x.bin", tone(1.0, 16000), 16000, format=fmt, subtype=subtype)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(AudioFormatError, match="^truncated: "):
        audio.read(path)


def test_truncated_flac(tmp_path):
    path = write(tmp_path, "x.flac", tone(2.0, 16000) + 0.01 * np.random.default_rng(0).standard_normal(32000),
                 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioFormatError, match="^(truncated|unreadable)"):
        audio.read(path)


def test_streaming_placeholder_size_is_not_truncation(tmp_path):
    path = write(tmp_path, "stream.wav", tone(1.0, 16000), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    samples, sr = audio.read(path)
    assert samples.shape == (16000, 1)


def test_nan_samples(tmp_path):
    y = tone(1.0, 16000)
    y[100:200] = np.nan
    path = write(tmp_path, "nan.wav", y, 16000, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match="^non-finite samples$"):
        audio.read(path)


def test_check_reasons(tmp_path):
    zeros = write(tmp_path, "zeros.wav", np.zeros(16000), 16000, subtype="PCM_16")
    samples, sr = audio.read(zeros)
    assert audio.check(samples, sr, 0.25, -60.0) == "silent (peak -inf dBFS < -60 dBFS)"
    tiny = write(tmp_path, "tiny.wav", tone(0.001, 16000), 16000, subtype="PCM_16")
    samples, sr = audio.read(tiny)
    assert audio.check(samples, sr, 0.25, -60.0) == "too short (0.001 s < 0.25 s)"
    assert audio.check(np.zeros((0, 1), np.float32), 16000, 0.25, -60.0) == "empty"
    quiet = np.full((16000, 1), 1e-4, np.float32)  # -80 dBFS
    assert audio.check(quiet, 16000, 0.25, -60.0) == "silent (peak -80.0 dBFS < -60 dBFS)"
    samples, sr = audio.read(write(tmp_path, "ok.wav", tone(1.0, 16000), 16000))
    assert audio.check(samples, sr, 0.25, -60.0) is None


# ---------------------------------------------------------------------------------------------- features

def small_cfg(**kw) -> FeatureConfig:
    base = {"image": "papers", "channels": "colormap", "image_height": 32, "image_width": 32, "n_mels": 32,
            "n_mfcc": 13, "extra": ["mfcc", "vector", "utterance"]}
    base.update(kw)
    return FeatureConfig.from_params({"features": base})


@pytest.mark.parametrize("channels,c", [("colormap", 3), ("delta", 3), ("gray", 1)])
def test_image_shapes(channels, c):
    cfg = small_cfg(channels=channels)
    y = audio.standardise(tone(1.0, 16000), 16000, CFG)
    out = features.render(y, 16000, cfg)
    img = features.decode_png(out.png)
    assert img.shape == (32, 32, c) == out.shape == cfg.image_shape
    assert img.dtype == np.uint8 and img.max() > img.min()
    assert out.png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("shape", [(32, 48, 1), (32, 48, 3), (17, 9, 3), (5, 7)])
def test_png_round_trip(shape):
    from PIL import Image
    import io

    img = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    data = features.encode_png(img)
    back = features.decode_png(data)
    np.testing.assert_array_equal(back, img if img.ndim == 3 else img[:, :, None])
    with Image.open(io.BytesIO(data)) as pil:
        pil.verify()  # CRCs and structure are valid PNG


@pytest.mark.parametrize("indexed", [False, True])
def test_colormap_png_is_the_rgb_image(monkeypatch, indexed):
    import io

    from PIL import Image

    monkeypatch.setattr(features, "INDEXED_COLORMAP_PNG", indexed)
    cfg = small_cfg(channels="colormap", extra=[])
    y = audio.standardise(tone(1.0, 16000), 16000, CFG)
    rgb = features.to_image(features.log_mel(y, 16000, cfg), cfg)
    png = features.render(y, 16000, cfg).png
    np.testing.assert_array_equal(features.decode_png(png), rgb)
    with Image.open(io.BytesIO(png)) as im:
        if indexed:
            assert im.mode == "P"
        else:  # the default: a bare PIL decode (as any reader may do) gives the RGB image itself
            np.testing.assert_array_equal(np.asarray(im), rgb)


def test_low_frequencies_at_the_bottom():
    cfg = small_cfg(channels="gray", extra=[])
    sr = 16000
    low = audio.standardise(np.sin(2 * np.pi * 150 * np.arange(sr) / sr), sr, CFG)
    img = features.decode_png(features.render(low, sr, cfg).png)[:, :, 0].astype(float)
    rows = img.mean(axis=1)  # brightness per image row, row 0 = top
    assert rows.argmax() >= 24  # the 150 Hz band is in the bottom quarter
    assert rows[-8:].mean() > rows[:8].mean() + 20


def test_log_mel_matches_librosa():
    import librosa

    cfg = FeatureConfig(n_fft=1024, hop_length=256, n_mels=128)
    y = audio.standardise(tone(2.0, 16000), 16000, CFG)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=256,
                                                             n_mels=128, fmin=0.0, fmax=8000.0), ref=np.max)
    ours = features.log_mel(y, 16000, cfg)
    assert ours.shape == ref.shape == (128, 188) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-2


def test_extras_and_deltas_match_librosa():
    import librosa

    cfg = FeatureConfig(n_fft=1024, hop_length=256, n_mels=128, n_mfcc=40, extra=("mfcc", "vector", "utterance"))
    sr = 16000
    y = audio.standardise(tone(2.0, sr) + 0.02 * np.random.default_rng(1).standard_normal(2 * sr), sr, CFG)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, n_mels=128, fmax=8000.0)
    ex = features.extras(y, sr, cfg)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=40).T
    np.testing.assert_allclose(ex["mfcc"], mfcc, atol=1e-2)
    frames = mfcc.shape[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=256)[0]
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=256)[0]
    np.testing.assert_allclose(ex["vector"][frames * 40:frames * 41], zcr, atol=0.02)
    np.testing.assert_allclose(ex["vector"][frames * 41:], rms, atol=1e-4)
    power = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) ** 2
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0)
    np.testing.assert_allclose(ex["utterance"][40:52], chroma.mean(axis=1), atol=1e-4)
    np.testing.assert_allclose(ex["utterance"][52:], mel.mean(axis=1), rtol=1e-3, atol=1e-6)
    logmel = features.log_mel(y, sr, cfg)
    for order in (1, 2):
        np.testing.assert_allclose(features._delta(logmel, order), librosa.feature.delta(logmel, order=order),
                                   atol=1e-3)


def test_extras_shapes():
    cfg = small_cfg()
    y = audio.standardise(tone(1.0, 16000), 16000, CFG)
    ex = features.render(y, 16000, cfg).extras
    frames = 1 + N // cfg.hop_length  # 188
    assert ex["mfcc"].shape == (frames, 13)
    assert ex["vector"].shape == (frames * 13 + 2 * frames,)
    assert ex["utterance"].shape == (13 + 12 + 32,)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in ex.values())
    only = features.extras(y, 16000, small_cfg(extra=["mfcc"]))
    assert set(only) == {"mfcc"}
    assert features.extras(y, 16000, small_cfg(extra=[])) == {}


def test_render_is_deterministic():
    cfg = small_cfg()
    y = audio.standardise(tone(1.0, 16000), 16000, CFG)
    assert features.render(y, 16000, cfg).png == features.render(y, 16000, cfg).png


def test_image_name():
    assert features.image_name("RAVDESS", "angry", "03-01-05-01-01-01-12") == "RAVDESS_Angry_03-01-05-01-01-01-12.png"
    assert features.image_name("TESS", "fearful", "OAF_back_fear", "_aug01") == "TESS_Fearful_OAF_back_fear_aug01.png"
    assert "/" not in features.image_name("ESD", "sad", "0011/Sad/0011_000351")


@pytest.mark.parametrize("section,key,value", [
    ("audio", "sample_rate", "16k"),
    ("audio", "sample_rate", 0),
    ("audio", "duration", -1),
    ("audio", "top_db", "loud"),
    ("audio", "peak_normalise", "yes"),
    ("features", "channels", "rgb"),
    ("features", "colormap", "no_such_map"),
    ("features", "n_mels", 0),
    ("features", "n_fft", 1.5),
    ("features", "image_height", "big"),
    ("features", "fmax", -5),
    ("features", "n_mfcc", 500),
    ("features", "extra", ["mfcc", "wavelets"]),
])
def test_bad_params_name_the_key(section, key, value):
    cls = AudioConfig if section == "audio" else FeatureConfig
    with pytest.raises(ParamsError) as exc:
        cls.from_params({section: {key: value}})
    assert exc.value.key == f"{section}.{key}"
    assert f"{section}.{key}" in str(exc.value)


def test_channels_error_lists_allowed_values():
    with pytest.raises(ParamsError, match="colormap, delta, gray"):
        FeatureConfig.from_params({"features": {"channels": "rgb"}})


def test_params_yaml_defaults_load():
    from pathlib import Path

    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    a, f = AudioConfig.from_params(params), FeatureConfig.from_params(params)
    assert a.n_samples == 48000 and f.image_shape[:2] == (f.image_height, f.image_width)


def test_audio_path_imports_no_tensorflow_keras_pyplot_or_librosa():
    """Workers and predict start fast: the audio -> image path loads none of the heavy libraries."""
    code = ("import sys, numpy as np\n"
            "from pipeline import audio, features\n"
            "cfg = features.FeatureConfig(extra=('mfcc', 'vector', 'utterance'))\n"
            "y = audio.standardise(np.sin(np.arange(8000) / 5.0), 16000, audio.AudioConfig())\n"
            "features.render(y, 16000, cfg)\n"
            "bad = [m for m in ('tensorflow', 'keras', 'matplotlib.pyplot', 'librosa', 'scipy.signal')\n"
            "       if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)
