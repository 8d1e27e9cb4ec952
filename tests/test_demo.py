"""The demo corpus: deterministic synthesis, its adapter, and emotions a speaker-independent model can learn."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from pipeline import TARGET_LABELS
from pipeline.corpora import Entry, Rejected, get_adapter
from pipeline.demo_corpus import (PROFILES, SENTENCES, VOICES, available_voices, generate, read_params,
                                  utterance_rng)
from pipeline.errors import ParamsError

VOICES_N, SENTENCES_N, SEED = 4, 4, 7
EXPECTED = VOICES_N * SENTENCES_N * len(TARGET_LABELS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "corpus"
    summary = generate(out, VOICES_N, SENTENCES_N, SEED, workers=1, progress=False)
    return out, summary


def _wavs(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))


def test_generation_writes_the_layout(corpus):
    root, summary = corpus
    assert summary["files"] == EXPECTED
    assert summary["per_emotion"] == {e: VOICES_N * SENTENCES_N for e in TARGET_LABELS}
    voices = [v.voice_id for v in available_voices()[:VOICES_N]]
    assert summary["voices"] == voices
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(voices)
    assert _wavs(root) == sorted(f"{v}/{v}_{e}_{s:02d}.wav" for v in voices for e in TARGET_LABELS
                                 for s in range(1, SENTENCES_N + 1))
    lines = (root / "sentences.txt").read_text().splitlines()
    assert lines == [f"{i:02d}\t{SENTENCES[i - 1]}" for i in range(1, SENTENCES_N + 1)]
    assert not list(root.rglob("*.tmp"))
    durations = []
    for path in root.rglob("*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (22050, 1, "PCM_16", "WAV")
        durations.append(info.duration)
    assert 1.0 <= min(durations) and max(durations) <= 3.6, (min(durations), max(durations))


def test_generation_is_byte_identical_and_clears_stale_files(corpus, tmp_path):
    first, _ = corpus
    again = tmp_path / "again"
    (again / "m8").mkdir(parents=True)  # a voice folder left by a larger configuration
    (again / "m8" / "m8_sad_01.wav").write_bytes(b"stale")
    (again / ".sentences.txt.x.tmp").write_text("interrupted write")
    (again / "notes.md").write_text("not ours: left alone")
    generate(again, VOICES_N, SENTENCES_N, SEED, workers=2, progress=False)  # other worker count, same bytes
    assert _wavs(again) == _wavs(first)
    for rel in _wavs(first):
        assert (again / rel).read_bytes() == (first / rel).read_bytes(), rel
    assert (again / "sentences.txt").read_bytes() == (first / "sentences.txt").read_bytes()
    assert not (again / "m8").exists() and not list(again.glob("*.tmp"))
    assert (again / "notes.md").exists()


def test_seed_changes_the_takes(tmp_path):
    a = utterance_rng(7, "m1_sad_01").uniform(size=4)
    assert np.array_equal(a, utterance_rng(7, "m1_sad_01").uniform(size=4))
    assert not np.array_equal(a, utterance_rng(8, "m1_sad_01").uniform(size=4))
    assert not np.array_equal(a, utterance_rng(7, "m1_sad_02").uniform(size=4))


def test_profiles_and_voices_cover_the_targets():
    assert set(PROFILES) == set(TARGET_LABELS)
    assert len(available_voices()) >= 8
    ids = [v.voice_id for v in VOICES]
    assert len(set(ids)) == len(ids) and all(i.isalnum() and i.islower() for i in ids)
    assert len(SENTENCES) >= 20


def test_adapter_reads_the_corpus(corpus, tmp_path):
    root, _ = corpus
    adapter = get_adapter("demo")
    assert (adapter.NAME, adapter.DISPLAY, adapter.DEFAULT_OPTIONS) == ("demo", "DEMO", {})
    assert adapter.LABEL_MAP == {t: t for t in TARGET_LABELS}
    assert adapter.detect(root)
    items = list(adapter.prepare(root, {}))
    assert all(isinstance(i, Entry) for i in items) and len(items) == EXPECTED
    voices = available_voices()[:VOICES_N]
    assert {i.speaker for i in items} == {f"demo:{v.voice_id}" for v in voices}
    assert {i.original_label for i in items} == set(TARGET_LABELS)
    assert {i.text_id for i in items} == {f"{s:02d}" for s in range(1, SENTENCES_N + 1)}
    genders = {v.voice_id: v.gender for v in voices}
    for item in items:
        assert item.corpus == "demo" and item.utt_id == item.path.stem
        assert item.gender == genders[item.speaker.split(":")[1]]
    assert {"female", "male"} == set(genders.values())

    # wrapped one level down, and files whose names do not parse
    wrapped = tmp_path / "download" / "demo"
    shutil.copytree(root, wrapped)
    (wrapped / "m1" / "m1_happy.wav").write_bytes(b"")
    (wrapped / "m1" / "f2_happy_01.wav").write_bytes(b"")
    (wrapped / "m1" / "m1_happy_77.wav").write_bytes(b"")
    assert adapter.detect(tmp_path / "download")
    items = list(adapter.prepare(tmp_path / "download", {}))
    rejected = {i.path.name: i.reason for i in items if isinstance(i, Rejected)}
    assert set(rejected) == {"m1_happy.wav", "f2_happy_01.wav", "m1_happy_77.wav"}
    assert sum(isinstance(i, Entry) for i in items) == EXPECTED
    assert not adapter.detect(tmp_path / "download" / "demo" / "m1")


def test_params_are_checked():
    good = {"demo": {"out_dir": "data/demo", "voices": 8, "sentences": 6, "seed": 7}}
    cfg = read_params(good)
    assert (cfg["voices"], cfg["sentences"], cfg["seed"], str(cfg["out_dir"])) == (8, 6, 7, "data/demo")
    n = len(available_voices())
    for key, bad in (("voices", 1), ("voices", n + 1), ("voices", "eight"), ("sentences", 0),
                     ("sentences", len(SENTENCES) + 1), ("seed", -1), ("out_dir", "")):
        with pytest.raises(ParamsError) as err:
            read_params({"demo": {**good["demo"], key: bad}})
        assert err.value.key == f"demo.{key}"


# --- separability: a few prosodic features, a linear model, voices it never saw -----------------------------

def _frames(y: np.ndarray, size: int = 1024, hop: int = 256) -> np.ndarray:
    n = 1 + max(0, len(y) - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    return y[idx]


def _features(path) -> list[float]:
    y, sr = sf.read(path, dtype="float32")
    y = y / (np.abs(y).max() + 1e-9)
    frames = _frames(y)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    voiced = rms > 0.1 * rms.max()
    spec = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) + 1e-9
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / sr)
    centroid = (spec * freqs).sum(axis=1) / spec.sum(axis=1)
    flatness = np.exp(np.log(spec).mean(axis=1)) / spec.mean(axis=1)
    zcr = (np.abs(np.diff(np.sign(frames), axis=1)) > 0).mean(axis=1)
    # pitch: autocorrelation peak between 60 and 500 Hz on voiced frames
    ac = np.fft.irfft(spec ** 2, axis=1)[:, : sr // 60 + 1]
    lo = sr // 500
    lag = lo + ac[:, lo:].argmax(axis=1)
    f0 = np.log(sr / lag[voiced])
    half = len(f0) // 2
    v = voiced
    return [len(y) / sr, rms[v].mean(), rms[v].std(), v.mean(), centroid[v].mean(), centroid[v].std(),
            np.log(flatness[v]).mean(), zcr[v].mean(), f0.std(), np.median(np.abs(np.diff(f0))),
            f0[half:].mean() - f0[:half].mean(), np.abs(np.diff(np.log(rms[v] + 1e-6))).mean()]


def held_out_voice_accuracy(root) -> float:
    """Leave-one-voice-out accuracy of a logistic regression on prosodic features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    paths = sorted(root.rglob("*.wav"))
    X = np.array([_features(p) for p in paths])
    y = np.array([p.stem.split("_")[1] for p in paths])
    voice = np.array([p.parent.name for p in paths])
    correct = 0
    for v in sorted(set(voice)):
        test = voice == v
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(X[~test], y[~test])
        correct += int((model.predict(X[test]) == y[test]).sum())
    return correct / len(paths)


def test_emotions_are_separable_on_unseen_voices(corpus):
    root, _ = corpus
    accuracy = held_out_voice_accuracy(root)
    assert accuracy >= 0.6, f"held-out-voice accuracy {accuracy:.2f} (chance 0.14)"
