"""predict --segments (issue 38): speech segments found by the voice activity detector on a recording with known
pauses (eSpeak speech, as the demo corpus makes it), the same segments whether the file is read in small blocks or
whole, a recording with no speech, --min-confidence, the timeline picture, the command's rows, and the exported
bundle carrying what --segments needs. No Keras: a stand-in model scores."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import yaml

from pipeline import predict
from pipeline.predict import Recording, abstain
from pipeline.segments import SegmentConfig

from tests.test_predict import PARAMS, card_for, configs

SR = 22050  # eSpeak's rate: the detector meets a resampled recording, as with most files


def speech(k: int) -> np.ndarray:
    from pipeline.demo_corpus.prosody import available_voices, synthesise

    y, sr = synthesise(available_voices()[k % 3], ("angry", "sad", "neutral", "happy")[k % 4], 1 + k % 2, 7)
    assert sr == SR
    return y


def recording(tmp_path, pauses=(1.0, 0.6, 1.5, 0.8), tail: float = 1.0, name="long.wav"):
    """Utterances joined by pauses of faint noise (-60 dBFS) -> (path, [(start, end) of each utterance])."""
    rng = np.random.default_rng(0)
    parts, truth, t = [], [], 0
    for k, pause in enumerate(pauses):
        parts.append((1e-3 * rng.standard_normal(int(pause * SR))).astype(np.float32))
        t += len(parts[-1])
        parts.append(speech(k))
        truth.append((t / SR, (t + len(parts[-1])) / SR))
        t += len(parts[-1])
    parts.append((1e-3 * rng.standard_normal(int(tail * SR))).astype(np.float32))
    path = tmp_path / name
    sf.write(path, np.concatenate(parts), SR, subtype="PCM_16")
    return path, truth


def segments_of(path, block_seconds=30.0, cfg=SegmentConfig(), windows=True):
    acfg, fcfg = configs(PARAMS, "image")
    rec = Recording(path, acfg, fcfg, ("image",), cfg, windows=windows, block_seconds=block_seconds)
    return rec, list(rec)


def test_segments_start_and_end_where_the_speech_does(tmp_path):
    path, truth = recording(tmp_path)
    rec, segs = segments_of(path)
    assert rec.error is None and len(segs) == len(truth)
    cfg = SegmentConfig()
    for seg, (start, end) in zip(segs, truth):
        # the segment holds the utterance, widened by the padding and at most a few of the detector's frames
        assert start - cfg.pad_s - 0.1 <= seg.start <= start + 0.1, (seg.start, start)
        assert end - 0.1 <= seg.end <= end + cfg.pad_s + 0.25, (seg.end, end)
        assert seg.error is None and seg.windows and seg.clip is not None
    assert rec.duration == pytest.approx(sf.info(path).duration)
    assert len(rec.energy) == int(rec.duration / rec.frame_s)  # one level per detector frame, for the picture


def test_a_short_pause_is_bridged_and_a_short_burst_dropped(tmp_path):
    path, truth = recording(tmp_path, pauses=(1.0, 0.15, 1.0))
    _, segs = segments_of(path)
    assert len(segs) == 2 and segs[0].start < truth[0][0] and segs[0].end > truth[1][1] - 0.1  # one over the gap
    _, kept = segments_of(path, cfg=SegmentConfig(min_speech_s=10.0))  # every segment shorter: dropped
    assert kept == []


def test_a_long_file_read_in_small_blocks_gives_the_segments_of_the_whole(tmp_path):
    path, _ = recording(tmp_path)
    _, whole = segments_of(path, block_seconds=1000.0, windows=False)
    _, blocks = segments_of(path, block_seconds=0.37, windows=False)  # blocks far smaller than the file
    assert [(s.start, s.end) for s in blocks] == [(s.start, s.end) for s in whole] and len(whole) == 4
    for a, b in zip(blocks, whole):
        np.testing.assert_array_equal(a.clip["image"], b.clip["image"])


def test_a_segment_is_prepared_as_a_file_of_its_audio_is(tmp_path):
    from pipeline import audio

    path, _ = recording(tmp_path)
    _, segs = segments_of(path)
    samples, sr = audio.read(path)
    first = segs[0]
    alone = tmp_path / "first.wav"
    sf.write(alone, samples[int(round(first.start * sr)):int(round(first.end * sr))], sr, subtype="PCM_16")
    as_file = predict.prepare(alone, *configs(PARAMS, "image"), "image")
    np.testing.assert_array_equal(as_file.windows[0]["image"], first.windows[0]["image"])


def test_a_recording_with_no_speech_has_no_segments(tmp_path):
    path = tmp_path / "hum.wav"
    noise = 1e-3 * np.random.default_rng(1).standard_normal(5 * SR)
    sf.write(path, noise.astype(np.float32), SR, subtype="PCM_16")
    rec, segs = segments_of(path)
    assert segs == [] and rec.error is None
    assert predict.no_speech_row(rec) == {"path": str(path), "start": 0.0, "end": 5.0, "emotion": None,
                                          "note": "no speech found"}


def test_an_unsure_answer_is_reported_uncertain_with_its_probabilities():
    rows = [{"emotion": "angry", "confidence": 0.55, "probabilities": {"angry": 0.55, "sad": 0.45}},
            {"emotion": "sad", "confidence": 0.9, "probabilities": {"angry": 0.1, "sad": 0.9}},
            {"path": "x.wav", "error": "no such file"}]
    out = abstain([dict(r) for r in rows], 0.6)
    assert [r.get("emotion") for r in out] == ["uncertain", "sad", None]
    assert out[0]["probabilities"] == rows[0]["probabilities"] and out[0]["confidence"] == 0.55
    assert abstain([dict(r) for r in rows], None)[0]["emotion"] == "angry"


def test_the_timeline_picture_has_time_energy_and_a_legend_of_the_emotions(tmp_path, monkeypatch):
    from pipeline import plotstyle, timeline

    path, _ = recording(tmp_path)
    rec, segs = segments_of(path, windows=False)
    rows = [{"start": s.start, "end": s.end, "emotion": e} for s, e in zip(segs, ["angry", "uncertain", "sad", "angry"])]
    drawn = {}
    monkeypatch.setattr(plotstyle, "save", lambda fig, where, dpi=110: drawn.update(fig=fig, where=where))
    timeline.plot_timeline(tmp_path / "t.png", rec, rows, ["angry", "sad"])
    (ax,) = drawn["fig"].axes
    assert ax.get_xlabel() == "time (s)" and ax.get_ylabel() == "energy (dB)"
    assert ax.get_xlim() == pytest.approx((0, rec.duration))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["angry", "sad", "uncertain"]
    spans = [p for p in ax.patches]
    assert len(spans) == 4 and spans[1].get_facecolor()[:3] == pytest.approx(
        tuple(int(plotstyle.UNCERTAIN_GREY[i:i + 2], 16) / 255 for i in (1, 3, 5)))
    plotstyle.pyplot().close(drawn["fig"])


class Constant:
    """A stand-in model: the same probabilities for every window."""

    def __init__(self, path, kinds):
        pass

    def predict(self, x):
        return np.tile(np.array([[0.6, 0.4]], np.float32), (len(next(iter(x.values()))), 1))


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    """A model card (the image input, no speaker normalisation) beside a placeholder model; the stand-in scores."""
    card = card_for(PARAMS, "image")
    card["segments"] = SegmentConfig.from_params(PARAMS).to_card()
    (tmp_path / "card.json").write_text(json.dumps(card))
    (tmp_path / "model.keras").write_bytes(b"")
    monkeypatch.setattr(predict, "LazyModel", Constant)
    return tmp_path


def test_predict_segments_writes_a_row_per_segment_and_the_picture(tmp_path, model_dir, capsys):
    path, truth = recording(tmp_path)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(2 * SR, np.float32) + np.float32(1e-3), SR, subtype="PCM_16")
    predict.main([str(path), str(quiet), "--segments", "--json", "--model", str(model_dir / "model.keras"),
                  "--min-confidence", "0.7"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in rows] == [str(path)] * 4 + [str(quiet)]
    assert all(r["emotion"] == "uncertain" and r["probabilities"] == pytest.approx({"angry": 0.6, "sad": 0.4})
               for r in rows[:4])
    assert [round(r["start"]) for r in rows[:4]] == [round(s) for s, _ in truth]
    assert rows[4]["note"] == "no speech found" and rows[4]["emotion"] is None
    picture = tmp_path / "timeline.png"
    predict.main([str(path), "--segments", "--csv", "--model", str(model_dir / "model.keras"), "--plot", str(picture)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("path,start,end,emotion,confidence") and len(lines) == 5
    assert picture.stat().st_size > 1000


def test_segment_options_that_cannot_work_are_one_line_errors(tmp_path, model_dir):
    from pipeline.errors import UserError

    path, _ = recording(tmp_path, pauses=(0.5,))
    model = str(model_dir / "model.keras")
    for argv, message in (([str(path), "--plot", "t.png"], "give --segments too"),
                          ([str(path), "--speakers", "recording"], "give --segments too"),
                          ([str(path), str(path), "--segments", "--plot", "t.png"], "give one file"),
                          ([str(path), "--min-confidence", "2"], "a probability")):
        with pytest.raises(UserError, match=message):
            predict.main(argv + ["--model", model])


def test_segment_settings_come_from_the_card_and_params_check_them():
    from pipeline.errors import ParamsError

    assert SegmentConfig.from_card({}) == SegmentConfig()  # a card from before segments: today's defaults
    card = {"segments": dict(SegmentConfig().to_card(), max_gap_s=0.5)}
    assert SegmentConfig.from_card(card).max_gap_s == 0.5
    assert SegmentConfig.from_params(PARAMS) == SegmentConfig(**yaml.safe_load(open("params.yaml"))["segments"])
    with pytest.raises(ParamsError, match="segments.frame_ms: 25 is not one of: 10, 20, 30"):
        SegmentConfig.from_params({"segments": {"frame_ms": 25}})
    with pytest.raises(ParamsError, match="segments.vad_aggressiveness: must be <= 3"):
        SegmentConfig.from_params({"segments": {"vad_aggressiveness": 4}})


def test_the_exported_bundle_carries_what_segments_and_the_picture_need():
    """The bundle's predict runs without this repository: every pipeline module --segments and --plot import is
    copied, and their packages are in its requirements."""
    from pipeline.export import BUNDLE_MODULES, BUNDLE_REQUIREMENTS
    from tests.test_dvc_stages import code_run_by, module_path

    needed = code_run_by("pipeline.segments") | code_run_by("pipeline.timeline") | {"pipeline.segments",
                                                                                  "pipeline.timeline"}
    files = {module_path(m).name for m in needed if module_path(m).parent.name == "pipeline"}
    assert files <= set(BUNDLE_MODULES), files - set(BUNDLE_MODULES)
    assert {"webrtcvad-wheels", "matplotlib"} <= set(BUNDLE_REQUIREMENTS)
