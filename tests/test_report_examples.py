"""The report's example spectrograms (pipeline/report.py) by their structure: per emotion the raw image the model
reads and beside it a labelled figure whose axes say time in seconds, mel frequency in Hz (the right way up) and
level in dB, titled with the corpus and file; the papers' 8-bit image gets none (it has no dB to show)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pipeline import features, plotstyle, report

SETTINGS = {"image_scale": {"static": [-100.0, 60.0]}, "audio": {"sample_rate": 16000},
            "features": {"hop_length": 160, "n_mels": 64, "fmin": 0.0, "fmax": 8000.0}}
LOUD_BAND = 20  # mel band (0 = lowest) that carries the sound


def native_png(frames: int = 301) -> bytes:
    """A native image: silence at the floor but one mel band at 0 dB from 1 s to 2 s."""
    db = np.full((frames, 64), -100.0, dtype=np.float32)  # (frames, n_mels), as render hands to to_native
    db[100:200, LOUD_BAND] = 0.0
    db[100:200, LOUD_BAND + 1:] = -50.0
    return features.encode_png(features.to_native(db, features.FeatureConfig()))


def test_labelled_figure_has_time_frequency_and_db_axes():
    from pipeline.features import _hz_to_mel, _mel_to_hz

    fig = report.spectrogram_figure(native_png(), SETTINGS, "angry: emodb, 03a01Wa.wav")
    try:
        ax, bar = fig.axes
        assert ax.get_xlabel() == "time (s)" and "Hz" in ax.get_ylabel() and "dB" in bar.get_ylabel()
        assert "emodb" in ax.get_title() and "03a01Wa.wav" in ax.get_title()
        assert ax.get_xlim() == pytest.approx((-0.005, 3.005))  # 301 frames of 10 ms, centred
        ticks = [float(t.get_text()) for t in ax.get_yticklabels()]
        assert ticks and all(0 < f <= 8000 for f in ticks) and ticks == sorted(ticks)
        image = ax.images[0]
        values = np.asarray(image.get_array())
        assert values.max() == pytest.approx(0.0, abs=0.01) and values.min() == pytest.approx(-100.0, abs=0.01)
        # where the loud band is drawn: its y position reads as the band's own centre frequency
        row = int(np.argmax(values[:, 150]))
        bottom, top = image.get_extent()[2:]
        y = top - (row + 0.5) * (top - bottom) / values.shape[0]  # origin upper: row 0 at the top
        mel = np.linspace(_hz_to_mel(0.0), _hz_to_mel(8000.0), 64 + 2)
        assert float(_mel_to_hz(y)) == pytest.approx(float(_mel_to_hz(mel[LOUD_BAND + 1])), rel=1e-6)
        # the loud part sits at 1-2 s on the time axis
        loud = np.flatnonzero(values[row] > -1)
        left, right = image.get_extent()[:2]
        seconds = left + (loud + 0.5) * (right - left) / values.shape[1]
        assert seconds[0] == pytest.approx(1.0, abs=0.011) and seconds[-1] == pytest.approx(2.0, abs=0.011)
        # no two texts overlap
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        from matplotlib.text import Text

        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text().strip()]
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
    finally:
        plotstyle.pyplot().close(fig)


def test_papers_image_gets_no_labelled_figure():
    assert report.spectrogram_figure(native_png(), dict(SETTINGS, image_scale=None), "x") is None


def test_examples_are_written_raw_and_labelled(tmp_path, monkeypatch):
    from tests.test_crossval_invariants import LABELS, write_workspace

    write_workspace(tmp_path)
    manifest = pd.read_parquet(tmp_path / "data/processed/manifest.parquet")
    manifest.assign(split="test").to_parquet(tmp_path / "data/processed/split.parquet")
    monkeypatch.chdir(tmp_path)
    found = report.write_examples()
    assert set(found) == set(LABELS)
    examples = tmp_path / "metrics/examples"
    for label, info in found.items():
        raw = (examples / f"{label}.png").read_bytes()
        assert features.decode_png(raw).shape[:2] == (8, 16)  # the image pixel for pixel, as before
        assert info["labelled"] and (examples / f"{label}_labelled.png").stat().st_size > 5000
        assert info["corpus"] == "demo" and info["file"] == info["name"]  # no source path: the clip's name
