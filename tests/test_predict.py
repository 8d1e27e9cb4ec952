"""predict's audio path (no model): folders collected, windows cut, per-file errors, the model's inputs, and the
speaker statistics each file gets."""
from __future__ import annotations

import numpy as np
import soundfile as sf
import yaml

import dataclasses

from pipeline import audio, features, model_card
from pipeline.normalisation import SpeakerNormaliser
from pipeline.predict import HOP_SECONDS, Prepared, collect, prepare, prepared_chunks, score

PARAMS = yaml.safe_load(open("params.yaml"))
# the papers' 8-bit image: the audio path's tests check its pixels
PAPERS = dict(PARAMS, features=dict(PARAMS["features"], image="papers", channels="colormap"))


def card_for(params: dict, kind: str, norm: SpeakerNormaliser | None = None) -> dict:
    """A model card as train writes it, from the render settings in `params`."""
    acfg, fcfg = audio.AudioConfig.from_params(params), features.FeatureConfig.from_params(params)
    settings = {"audio": dataclasses.asdict(acfg), "features": dict(dataclasses.asdict(fcfg), extra=list(fcfg.extra)),
                "image_scale": features.image_scale(fcfg)}
    norm = norm or SpeakerNormaliser(layout="vector", mode="none")
    return model_card.make("cnn", ["angry", "sad"], {kind: ((1,), norm)}, settings)


def configs(params: dict, kind: str):
    return model_card.configs(card_for(params, kind))


def speech_like(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def test_collect_takes_audio_from_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.wav", "sub/b.flac", "notes.txt", "._c.wav"):
        (tmp_path / name).write_bytes(b"x")
    files = collect([str(tmp_path), "missing.wav"])
    assert [f.name for f in files] == ["a.wav", "b.flac", "missing.wav"]


def test_long_recording_is_scored_on_overlapping_windows_like_training(tmp_path):
    acfg, fcfg = configs(PAPERS, "image")
    long_path, short_path = tmp_path / "long.wav", tmp_path / "short.flac"
    sf.write(long_path, np.stack([speech_like(10.0, 44100)] * 2, axis=1), 44100, subtype="PCM_24")
    sf.write(short_path, speech_like(2.0, 8000), 8000)
    long, short = prepare(long_path, acfg, fcfg, "image"), prepare(short_path, acfg, fcfg, "image")
    assert long.error is None and short.error is None
    # 10 s (trimmed by at most a frame) in 3 s windows every 1.5 s, the last aligned to the end
    assert len(long.windows) == int(np.ceil((10.0 - acfg.duration) / HOP_SECONDS)) + 1
    assert all(w["image"].shape == fcfg.image_shape and w["image"].dtype == np.uint8 for w in long.windows)
    # a short file is exactly the image render makes for training, and so is its clip (its speaker statistics)
    samples, sr = audio.read(short_path)
    trained = features.decode_png(features.render(audio.standardise(samples, sr, acfg), acfg.sample_rate,
                                                  fcfg).png)
    assert len(short.windows) == 1 and np.array_equal(short.windows[0]["image"], trained)
    assert short.clip is short.windows[0]
    # a long file's statistics come from the one clip training would have made of it, not from its windows
    samples, sr = audio.read(long_path)
    centre = features.decode_png(features.render(audio.standardise(samples, sr, acfg), acfg.sample_rate, fcfg).png)
    assert np.array_equal(long.clip["image"], centre)


def test_bad_inputs_get_their_own_error_and_the_rest_are_prepared(tmp_path):
    acfg, fcfg = configs(PARAMS, "image")
    good = tmp_path / "good.wav"
    sf.write(good, speech_like(1.0, 16000), 16000)
    text = tmp_path / "text.wav"
    text.write_text("hello")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    files = [good, text, tmp_path / "gone.wav", silent]
    chunks = list(prepared_chunks(files, acfg, fcfg, "image", chunk=3))
    assert [len(c) for c in chunks] == [3, 1]
    prepared = [p for c in chunks for p in c]
    assert prepared[0].error is None and len(prepared[0].windows) == 1
    assert prepared[1].error.startswith("unreadable") and prepared[2].error == "no such file"
    assert prepared[3].error.startswith("silent")


def test_predict_takes_its_settings_from_the_model_card_not_from_params():
    trained = dict(PARAMS, features=dict(PARAMS["features"], n_mels=48, image_height=32, image_width=48))
    card = card_for(trained, "image")
    acfg, fcfg = model_card.configs(card)
    assert (fcfg.n_mels, fcfg.image_height, fcfg.image_width) == (48, 32, 48)  # params.yaml says otherwise
    assert features.FeatureConfig.from_params(PARAMS).n_mels != 48


class Echo:
    """A stand-in runtime whose 'probabilities' are its first two input values: what normalisation did shows."""

    def predict(self, x: dict) -> np.ndarray:
        return np.asarray(x["compare"])[:, :2]


def test_each_file_says_which_statistics_normalised_it():
    rng = np.random.default_rng(0)
    train = rng.normal(1.0, 2.0, (30, 4)).astype(np.float32)
    norm = SpeakerNormaliser(layout="vector", mode="speaker").fit(train)
    card = card_for(PARAMS, "compare", norm)
    loud = [Prepared(f"a/{i}.wav", windows=[{"compare": rng.normal(10, 2, 4).astype(np.float32)}]) for i in range(12)]
    for p in loud:
        p.clip = p.windows[0]
    lone = Prepared("b/x.wav", windows=[{"compare": np.full(4, 3.0, np.float32)}])
    lone.clip = lone.windows[0]
    stats = {"a": {"compare": norm.statistics(np.stack([p.clip["compare"] for p in loud]), "speaker")},
             "b": {"compare": norm.statistics(lone.clip["compare"][None], "speaker")}}
    rows = score(Echo(), loud + [lone], card, lambda path: path.split("/")[0], stats)
    assert [r["normalisation"] for r in rows] == ["speaker (12 clips)"] * 12 + ["population"]
    a = np.array([[r["probabilities"]["angry"], r["probabilities"]["sad"]] for r in rows[:12]])
    assert np.allclose(a.mean(axis=0), 0, atol=1e-5)  # speaker a on its own statistics
    # a folder of one file has no statistics of its own: the training population's, not the identity
    expected = (3.0 - train.mean(axis=0)[:2]) / (train.std(axis=0)[:2] + 1e-6)
    assert np.allclose(list(rows[12]["probabilities"].values()), expected, atol=1e-5)
    cold = score(Echo(), [lone], card)  # no speakers given: the cold path
    assert cold[0]["normalisation"] == "population"


def test_feature_models_get_their_column_even_when_params_do_not_ask(tmp_path):
    params = dict(PARAMS, features=dict(PARAMS["features"], extra=[]))
    _, fcfg = configs(params, "utterance")
    assert fcfg.extra == ("utterance",)
    path = tmp_path / "a.wav"
    sf.write(path, speech_like(1.5, 16000), 16000)
    prepared = prepare(path, *configs(params, "mfcc"), "mfcc")
    assert prepared.error is None and prepared.windows[0]["mfcc"].ndim == 3 and prepared.windows[0]["mfcc"].shape[-1] == 1


def test_a_functionals_model_reads_the_whole_trimmed_recording_as_render_does(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, speech_like(5.0, 22050), 22050)  # longer than the 3-s window
    acfg, fcfg = configs(PARAMS, "compare")
    assert fcfg.functionals_on == "speech"
    prepared = prepare(path, acfg, fcfg, ("compare", "egemaps"))
    samples, sr = audio.read(path)
    speech = audio.prepare(samples, sr, acfg)
    assert len(prepared.windows) == 1 and len(speech) > acfg.n_samples  # one input per file, not per window
    expected = features.smile_functionals(speech, acfg.sample_rate, "compare")
    np.testing.assert_array_equal(prepared.windows[0]["compare"], expected)
    # eGeMAPS (the baseline's input) over the recording as read, at its own 22.05 kHz, as render takes it
    expected = features.smile_functionals(audio.mono(samples), sr, "egemaps")
    np.testing.assert_array_equal(prepared.windows[0]["egemaps"], expected)
    assert prepared.clip is prepared.windows[0]  # the speaker statistics count it once, as training does


class Windows:
    """A stand-in runtime returning fixed probabilities per window."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float32)

    def predict(self, x: dict) -> np.ndarray:
        return self.probs[: len(next(iter(x.values())))]


def test_calibration_says_how_sure_predict_is_never_what_it_answers():
    """A file of several windows: the decision is the windows' mean (as crossval scores a clip); the card's
    temperature scales that mean once. Scaled window by window first, the mean could change class."""
    norm = SpeakerNormaliser(layout="vector", mode="none")
    card = card_for(PARAMS, "compare", norm)
    card["labels"] = ["angry", "sad"]
    card["calibration"] = {"temperature": {"speaker": 1.5, "enrolled": 1.5, "cold": 1.5}}
    windows = [[0.99, 0.01], [0.2, 0.8], [0.2, 0.8]]  # the mean says sad; each scaled first, the mean says angry
    prepared = Prepared("long.wav", windows=[{"compare": np.zeros(4, np.float32)} for _ in windows])
    (row,) = score(Windows(windows), [prepared], card)
    assert row["emotion"] == "sad" and row["windows"] == 3
    assert 0.5 < row["confidence"] < np.mean([0.01, 0.8, 0.8])  # less sure than the raw mean, same answer
