"""The picture of one recording's segments (predict --segments --plot): its energy over time, each speech
segment shaded in its emotion's colour (plotstyle.EMOTION_COLOURS; `uncertain` grey), time in seconds of the
recording, a legend of the emotions shown. matplotlib on Agg, imported only when a picture is asked for."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_timeline(path: Path, recording, rows: list[dict], labels: list[str]) -> None:
    """recording: a predict.Recording read to its end (energy in dB per detector frame, frame_s, duration);
    rows: its segments' rows (start, end, emotion)."""
    from pipeline import plotstyle

    plt = plotstyle.pyplot()
    duration = max(recording.duration, 1e-3)
    fig, ax = plt.subplots(figsize=(min(4 + duration / 6, 24), 3.2))
    energy = np.asarray(recording.energy, dtype=np.float32)
    t = (np.arange(len(energy)) + 0.5) * recording.frame_s
    floor = -80.0
    ax.plot(t, np.maximum(energy, floor), color="black", linewidth=0.6, label="_energy")
    shown: dict = {}
    for r in rows:
        if r.get("start") is None or not r.get("emotion"):
            continue
        emotion = r["emotion"]
        colour = plotstyle.EMOTION_COLOURS.get(emotion, plotstyle.UNCERTAIN_GREY)
        ax.axvspan(r["start"], r["end"], color=colour, alpha=0.45, linewidth=0,
                   label=emotion if emotion not in shown else "_")
        shown[emotion] = colour
    ax.set_xlim(0, duration)
    top = float(energy.max()) if energy.size else 0.0
    ax.set_ylim(floor, max(top, floor + 10) + 5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("energy (dB)")
    ax.set_title(f"{Path(str(recording.path)).name}: {len([r for r in rows if r.get('emotion')])} speech segments")
    order = [lab for lab in labels if lab in shown] + [e for e in shown if e not in labels]
    handles = [plt.Rectangle((0, 0), 1, 1, color=shown[e], alpha=0.45) for e in order]
    if handles:
        ax.legend(handles, order, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(order), 8),
                  frameon=False)
    plotstyle.save(fig, path)
