"""The report's timeline (issue 38): a test speaker's clips joined with pauses (pipeline/joined_recording.py) and
scored through predict --segments' path give the picture and a table whose segments lie where the clips were
joined, each beside its clip's truth; the report's section shows both. eSpeak clips, a stand-in model: no Keras."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from pipeline import report
from pipeline.joined_recording import PAUSES, segment_table
from pipeline.segments import SegmentConfig

from tests.test_predict import PARAMS, card_for
from tests.test_segments import SR, Constant, speech

EMOTIONS = ("angry", "sad", "neutral", "happy")


@pytest.fixture
def split_file(tmp_path):
    """split.parquet of a test speaker with four emotions, a test speaker with one and a training speaker, each
    clip an eSpeak utterance on disk."""
    rows = []
    for speaker, split, emotions in (("demo:a", "test", EMOTIONS), ("demo:b", "test", EMOTIONS[:1]),
                                     ("demo:c", "train", EMOTIONS[:2])):
        for k, emotion in enumerate(emotions):
            path = tmp_path / f"{speaker[5:]}_{emotion}.wav"
            sf.write(path, speech(k), SR, subtype="PCM_16")
            rows.append({"utt_id": path.stem, "corpus": "demo", "speaker": speaker, "label": emotion,
                         "path": str(path), "split": split})
    out = tmp_path / "split.parquet"
    pd.DataFrame(rows).to_parquet(out)
    return out


def card():
    out = card_for(PARAMS, "image")
    out["segments"] = SegmentConfig.from_params(PARAMS).to_card()
    return out


def test_the_timeline_of_a_test_speakers_clips_has_a_picture_and_segments_where_the_clips_are(tmp_path, split_file):
    png = tmp_path / "examples" / "timeline.png"
    timeline = report.write_timeline(Constant(None, None), card(), split_file=split_file, png=png)
    assert png.stat().st_size > 1000
    assert timeline["speaker"] == "demo:a" and timeline["clips"] == 4 and timeline["corpus"] == "demo"
    table = timeline["segments"]
    assert len(table) == 4 and all(len(r["files"]) == 1 for r in table)  # one segment per clip
    assert {r["files"][0]: r["truth"] for r in table} == {f"a_{e}.wav": [e] for e in EMOTIONS}
    cfg = SegmentConfig()
    for r in table:
        # the segment holds the clip where it was joined, widened by the padding and a few of the detector's frames
        assert r["clip_start"] - cfg.pad_s - 0.1 <= r["start"] <= r["clip_start"] + 0.1, r
        assert r["clip_end"] - 0.1 <= r["end"] <= r["clip_end"] + cfg.pad_s + 0.25, r
        assert r["emotion"] == "angry" and r["confidence"] == pytest.approx(0.6)  # the stand-in's answer
    gaps = [b["clip_start"] - a["clip_end"] for a, b in zip(table, table[1:])]
    assert all(PAUSES[0] - 0.01 <= g <= PAUSES[1] + 0.01 for g in gaps), gaps
    assert timeline["seconds"] == pytest.approx(table[-1]["clip_end"] + 1.0, abs=0.06)  # 1 s after the last clip
    json.dumps(timeline)  # plain values, as the report writes them

    lines = "\n".join(report.timeline_lines(timeline))
    assert "![timeline of demo:a's clips joined](examples/timeline.png)" in lines
    assert "| segment (s) | predicted | confidence | clip (s) | file | truth |" in lines
    for r in table:
        assert f"| {r['start']:.2f}-{r['end']:.2f} | angry | 0.60 | {r['clip_start']:.2f}-{r['clip_end']:.2f} | " \
               f"`{r['files'][0]}` | {r['truth'][0]} |" in lines


def test_no_audio_of_the_test_split_means_no_timeline_and_no_old_picture(tmp_path, split_file):
    png = tmp_path / "timeline.png"
    png.write_bytes(b"an earlier run's")
    split = pd.read_parquet(split_file)
    split.assign(path=[str(tmp_path / "gone" / Path(p).name) for p in split["path"]]).to_parquet(split_file)
    assert report.write_timeline(Constant(None, None), card(), split_file=split_file, png=png) is None
    assert not png.exists()


def test_a_segment_over_two_clips_and_a_clip_with_none_are_both_in_the_table():
    truth = pd.DataFrame({"file": ["x/a.wav", "x/b.wav", "x/c.wav"], "label": ["sad", "angry", "happy"],
                          "start": [1.0, 3.4, 7.0], "end": [3.0, 5.0, 9.0]})
    rows = [{"start": 0.9, "end": 5.1, "emotion": "sad", "confidence": 0.7},  # bridged the pause between a and b
            {"path": "r.wav", "start": 6.0, "end": 6.5, "error": "too short"}]  # an error row is no segment
    table = segment_table(truth, rows)
    assert [(r["start"], r["files"], r["truth"]) for r in table] == [(0.9, ["a.wav", "b.wav"], ["sad", "angry"]),
                                                                    (None, ["c.wav"], ["happy"])]
    assert (table[0]["clip_start"], table[0]["clip_end"]) == (1.0, 5.0)
    assert "| none found |  |  | 7.00-9.00 | `c.wav` | happy |" in report.timeline_lines(
        {"clips": 3, "speaker": "s", "corpus": "c", "seconds": 10.0, "normalisation": "recording (1 clips)",
         "segments": table})


def test_the_examples_of_the_next_run_keep_the_timeline_drawn_before_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    examples = tmp_path / "metrics/examples"
    examples.mkdir(parents=True)
    (examples / "timeline.png").write_bytes(b"drawn")
    (examples / "calm.png").write_bytes(b"an emotion no longer in the data")
    report.write_examples()
    assert sorted(p.name for p in examples.iterdir()) == ["timeline.png"]
