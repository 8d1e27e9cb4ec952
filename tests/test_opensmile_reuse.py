"""openSMILE functionals by one reused instance per thread (features.ReusedSmile) equal opensmile.Smile's
process_signal, a new instance per clip, to the last bit: on synthetic clips, on a real EmoDB recording, in
any order of clips, in forked workers and threads; and process_signal takes over where reuse is unavailable."""
import threading
import warnings

import numpy as np
import pytest

from pipeline import audio, features
from pipeline.parallel import imap
from tests.test_real_speech import EMODB

KINDS = ("compare", "egemaps")


@pytest.fixture(autouse=True)
def fresh_instances(monkeypatch):
    """Every test builds its own instances (and none leaks into the next test)."""
    monkeypatch.setattr(features, "_local", threading.local())
    monkeypatch.setattr(features, "REUSE_SMILE_INSTANCE", True)


def _clip(seed: int, sr: int = 16000, seconds: float = 1.2, level: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(1, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 10)) * (np.sin(2 * np.pi * 3 * t) > -0.3)
    return (level * voiced + rng.normal(scale=0.03, size=t.size)).astype(np.float32)


def _today(y: np.ndarray, sr: int, kind: str) -> np.ndarray:
    """smile_functionals as before reuse: process_signal, a new openSMILE instance for the clip."""
    values = features._smile(kind).process_signal(np.asarray(y, dtype=np.float32), sr).to_numpy()[0]
    return np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _bitwise(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", KINDS)
def test_reused_instance_gives_process_signals_values_bitwise(kind):
    clips = [(_clip(0), 16000), (_clip(1, sr=22050, seconds=0.7), 22050),
             (_clip(2, level=1.5), 16000),  # beyond full scale: the same 16-bit wrap-around as process_signal
             (np.zeros(8000, np.float32), 16000),  # digital silence
             (_clip(3, seconds=0.04), 16000), (np.zeros(0, np.float32), 16000)]  # too short: no frame, zeros
    for y, sr in clips:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Segment too short" from both paths
            got, want = features.smile_functionals(y, sr, kind), _today(y, sr, kind)
        assert got.shape == ({"compare": (6373,), "egemaps": (88,)}[kind])
        assert _bitwise(got, want), (kind, sr, y.size)
        if y.size > sr // 10:  # the raw row too, NaN payloads included
            raw = features._reused_smile(kind, sr)(y)
            assert _bitwise(raw, features._smile(kind).process_signal(y, sr).to_numpy()[0])
    assert isinstance(features._local.instances[(kind, 16000)], features.ReusedSmile)  # reuse, not fallback


def test_clips_give_their_own_values_in_either_order():
    a, b = _clip(10, seconds=1.5), _clip(11, seconds=0.8, level=0.1)
    for kind in KINDS:
        alone = {"a": _today(a, 16000, kind), "b": _today(b, 16000, kind)}
        ab = [features.smile_functionals(y, 16000, kind) for y in (a, b)]
        ba = [features.smile_functionals(y, 16000, kind) for y in (b, a)]
        assert _bitwise(ab[0], alone["a"]) and _bitwise(ab[1], alone["b"])
        assert _bitwise(ba[0], alone["b"]) and _bitwise(ba[1], alone["a"])
        assert not np.array_equal(alone["a"], alone["b"])


def test_a_real_emodb_recording_and_its_speech():
    wav = EMODB / "03a01Fa.wav"
    if not wav.is_file():
        pytest.skip(f"no EmoDB copy at {EMODB}")
    samples, sr = audio.read(wav)
    recording = audio.mono(samples)
    speech = audio.prepare(samples, sr, audio.AudioConfig())  # the trimmed 16-kHz speech render analyses
    for y, rate in ((recording, sr), (speech, 16000)):
        for kind in KINDS:
            assert _bitwise(features.smile_functionals(y, rate, kind), _today(y, rate, kind)), (kind, rate)


def _both(seed: int) -> tuple[np.ndarray, np.ndarray]:
    y = _clip(seed, seconds=0.6)
    return features.smile_functionals(y, 16000, "compare"), features.smile_functionals(y, 16000, "egemaps")


def test_forked_workers_and_threads_build_their_own_instances():
    seeds = [20, 21, 22, 23]
    want = [(_today(_clip(s, seconds=0.6), 16000, "compare"), _today(_clip(s, seconds=0.6), 16000, "egemaps"))
            for s in seeds]
    _both(99)  # the parent holds instances before it forks: a worker must not run them
    forked = list(imap(_both, seeds, workers=2, desc="test", chunksize=1))
    threaded: dict = {}
    threads = [threading.Thread(target=lambda s=s: threaded.__setitem__(s, _both(s))) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s, (c, e), (fc, fe) in zip(seeds, want, forked):
        assert _bitwise(fc, c) and _bitwise(fe, e)
        assert _bitwise(threaded[s][0], c) and _bitwise(threaded[s][1], e)


def test_falls_back_to_process_signal_where_reuse_is_unavailable(monkeypatch):
    y = _clip(30, seconds=0.6)

    def other_opensmile(self, smile, sr):
        raise AttributeError("module 'opensmile.core.lib' has no attribute 'smileapi'")

    monkeypatch.setattr(features.ReusedSmile, "__init__", other_opensmile)
    with pytest.warns(UserWarning, match="no reusable instance"):
        got = features.smile_functionals(y, 16000, "egemaps")
    assert _bitwise(got, _today(y, 16000, "egemaps"))
    assert features._local.instances[("egemaps", 16000)] is None  # tried once, not for every clip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _bitwise(features.smile_functionals(y, 16000, "egemaps"), got)


def test_falls_back_where_the_probe_disagrees(monkeypatch):
    y = _clip(31, seconds=0.6)
    monkeypatch.setattr(features, "probe", lambda reused, smile, sr: False)
    with pytest.warns(UserWarning, match="differs from process_signal"):
        got = features.smile_functionals(y, 16000, "egemaps")
    assert _bitwise(got, _today(y, 16000, "egemaps"))
    assert features._local.instances[("egemaps", 16000)] is None


def test_switched_off_it_is_process_signal(monkeypatch):
    monkeypatch.setattr(features, "REUSE_SMILE_INSTANCE", False)
    y = _clip(32, seconds=0.6)
    assert _bitwise(features.smile_functionals(y, 16000, "egemaps"), _today(y, 16000, "egemaps"))
    assert not getattr(features._local, "instances", {})


def test_keeps_a_bounded_number_of_instances(monkeypatch):
    monkeypatch.setattr(features, "REUSED_PER_THREAD", 2)
    y = _clip(33, seconds=0.3)
    for sr in (16000, 22050, 24000):
        features.smile_functionals(y, sr, "egemaps")
    assert list(features._local.instances) == [("egemaps", 22050), ("egemaps", 24000)]


def test_the_bench_times_both_ways_and_finds_them_identical(tmp_path):
    if not EMODB.is_dir():
        pytest.skip(f"no EmoDB copy at {EMODB}")
    import importlib.util

    from tests.test_e2e import REPO

    spec = importlib.util.spec_from_file_location("bench_opensmile", REPO / "bench" / "bench_opensmile.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--files", "2", "--rounds", "1", "--out", str(tmp_path / "o.json")])
    assert result["identical"] and [r["part"] for r in result["rows"]] == ["render", "compare", "egemaps"]
    assert features.REUSE_SMILE_INSTANCE  # the bench leaves the default as it found it
