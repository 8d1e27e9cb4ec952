"""bench_render times real-rate files: the 'real' set is at the corpora's rates and lengths, 16-bit WAV."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_render", ROOT / "bench" / "bench_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_set_has_the_corpora_rates_and_lengths(tmp_path):
    bench = _bench()
    assert bench.CORPUS_LIKE == {"ravdess": (48000, 3.7), "tess": (24414, 2.0), "cremad": (16000, 2.5)}
    files = bench.make_corpus(tmp_path, 6, seed=0, kind="real")
    assert [group for _, group in files] == ["ravdess", "tess", "cremad"] * 2
    for path, group in files:
        info = sf.info(path)
        rate, seconds = bench.CORPUS_LIKE[group]
        assert info.samplerate == rate and info.subtype == "PCM_16" and info.channels == 1
        assert info.duration == pytest.approx(seconds, rel=0.16)
