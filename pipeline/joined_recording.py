"""A long recording made of labelled clips, the truth known per clip: the clips joined with pauses of 0.3-2 s over
a floor of low white noise, as a call or an interview would hold them. bench/long_recordings.py measures predict
--segments on such recordings of held-out speakers; the report (pipeline/report.py) draws the timeline of one.

    truth = build_recording(clips, out_wav, seed)        # clips: a frame with a `file` column
    table = segment_table(truth, rows)                   # rows: predict's --segments rows of out_wav
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

NOISE_DB = -60.0  # the background's level below the clips' median peak
PAUSES = (0.3, 2.0)  # seconds between two clips, drawn uniformly; 1 s before the first and after the last


def build_recording(clips: pd.DataFrame, out: Path, seed: int) -> pd.DataFrame:
    """The clips joined with pauses into one 16-bit WAV at the first clip's rate, a floor of white noise
    NOISE_DB below the clips' median peak under all of it (pauses and speech alike: a recording's background,
    no step at a clip's edge); -> the clips in their (seeded, shuffled) order with their start and end in the
    recording."""
    import soundfile as sf
    import soxr

    from pipeline import audio

    rng = np.random.default_rng(seed)
    order = clips.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    sr, parts, starts, ends, peaks, t = None, [], [], [], [], 0
    for i, row in order.iterrows():
        y, rate = audio.read(row["file"])
        y = audio.mono(y)
        sr = sr or rate
        if rate != sr:
            y = soxr.resample(y, rate, sr).astype(np.float32)
        pause = 1.0 if i == 0 else rng.uniform(*PAUSES)
        parts.append(np.zeros(int(pause * sr), np.float32))
        t += len(parts[-1])
        starts.append(t / sr)
        parts.append(y)
        peaks.append(float(np.abs(y).max()))
        t += len(y)
        ends.append(t / sr)
    parts.append(np.zeros(sr, np.float32))
    x = np.concatenate(parts)
    x += (np.median(peaks) * 10 ** (NOISE_DB / 20) * rng.standard_normal(len(x))).astype(np.float32)
    sf.write(out, np.clip(x, -1, 1), sr, subtype="PCM_16")
    return order.assign(start=starts, end=ends)


def segment_table(truth: pd.DataFrame, rows: list[dict]) -> list[dict]:
    """Each speech segment beside the joined clips whose middle it holds (their bounds in the recording and true
    labels; two clips when the detector bridged the pause between them), in the recording's order; a clip no
    segment holds gets a row of its own with no segment. truth: build_recording's frame (file, label, start, end);
    rows: predict's --segments rows (start, end, emotion, confidence)."""
    segments = sorted((r for r in rows if r.get("emotion")), key=lambda r: r["start"])
    middles = ((truth["start"] + truth["end"]) / 2).to_numpy()
    held = np.zeros(len(truth), dtype=bool)
    table = []
    for seg in segments:
        inside = np.flatnonzero((middles >= seg["start"]) & (middles <= seg["end"]) & ~held)
        held[inside] = True
        clips = truth.iloc[inside]
        table.append({"start": seg["start"], "end": seg["end"], "emotion": seg["emotion"],
                      "confidence": seg["confidence"],
                      "clip_start": float(clips["start"].min()) if len(clips) else None,
                      "clip_end": float(clips["end"].max()) if len(clips) else None,
                      "files": [Path(str(f)).name for f in clips["file"]], "truth": list(clips["label"])})
    for _, clip in truth[~held].iterrows():
        table.append({"start": None, "end": None, "emotion": None, "confidence": None,
                      "clip_start": float(clip["start"]), "clip_end": float(clip["end"]),
                      "files": [Path(str(clip["file"])).name], "truth": [clip["label"]]})
    return sorted(table, key=lambda r: r["clip_start"] if r["start"] is None else r["start"])
