"""The experiment report written by evaluate: metrics/report.md with its pictures beside it.

Headline metrics, per-class and per-corpus tables, the confusion matrix, training curves, one example
spectrogram per emotion, the timeline of a recording made of a test speaker's clips (predict --segments) and the
data summary (files per corpus x label, dropped, quarantined, splits).
"""
from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from pipeline.io import atomic_path, write_text
from pipeline.paths import (CURVES_PNG, EXAMPLES_DIR, INGEST_SUMMARY, MODEL, SHARDS, SPLIT_FILE, SPLIT_SUMMARY,
                            TRAIN_CURVES, TRAIN_SUMMARY)

# inside the examples folder, as each emotion's pictures are (not in paths.py: every stage depends on that file)
TIMELINE_PNG = EXAMPLES_DIR / "timeline.png"  # a test speaker's clips joined, through predict --segments
TIMELINE_CLIPS = 8  # at most, one per emotion: about half a minute of audio, a few seconds to score



def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def plot_curves(path: Path = CURVES_PNG) -> bool:
    """Loss and accuracy per epoch from DVCLive's TSVs."""
    series = {}
    for tsv in sorted(TRAIN_CURVES.rglob("*.tsv")):
        name = str(tsv.relative_to(TRAIN_CURVES).with_suffix(""))
        with tsv.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        key = [k for k in (rows[0].keys() if rows else []) if k not in ("step", "timestamp")]
        if rows and key:
            series[name] = ([int(r["step"]) for r in rows], [float(r[key[0]]) for r in rows])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    if not series:  # still write the file: it is a declared output of the evaluate stage
        fig.text(0.5, 0.5, "no training curves found in " + str(TRAIN_CURVES), ha="center")
    for ax, kind in zip(axes, ("loss", "accuracy")):
        for name, (x, y) in series.items():
            if name.endswith(kind):
                ax.plot([s + 1 for s in x], y, label=name, marker=".")
        ax.set_xlabel("epoch")
        ax.set_title(kind)
        if series:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return bool(series)


def spectrogram_figure(png: bytes, settings: dict, title: str):
    """A native image as a person reads it: time in seconds (frames hop_length / sample_rate apart, centred)
    on x, the mel bands' centre frequencies in Hz on a mel axis (features.fmin..fmax) on y, the static plane in
    dB (image_values on the image's fixed scale) with its colour bar. -> the matplotlib Figure, or None for the
    papers' 8-bit image (min-max scaled and resized: no dB, no time axis to give it)."""
    from pipeline import plotstyle
    from pipeline.features import _hz_to_mel, decode_png, image_values

    scale = settings.get("image_scale")
    if not scale:
        return None
    db = image_values(decode_png(png), scale)[:, :, 0]  # (n_mels, frames), low frequencies at the bottom
    feats, sr = settings["features"], float(settings["audio"]["sample_rate"])
    n_mels, frames = db.shape
    hop = feats["hop_length"] / sr
    fmin = float(feats.get("fmin") or 0.0)
    fmax = min(float(feats["fmax"]), sr / 2) if feats.get("fmax") is not None else sr / 2
    mel_lo, mel_hi = float(_hz_to_mel(fmin)), float(_hz_to_mel(fmax))
    step = (mel_hi - mel_lo) / (n_mels + 1)  # band k is centred on mel_lo + (k + 1) step (librosa's filters)
    floor = float(scale["static"][0])
    peak = float(db.max())
    plt = plotstyle.pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 3.6))
    bottom, top = mel_lo + step / 2, mel_hi - step / 2  # the lowest band's centre - step / 2, the highest's + it
    image = ax.imshow(db, origin="upper", aspect="auto", cmap="magma", interpolation="nearest",
                      vmin=max(floor, peak - 80.0), vmax=peak, extent=(-hop / 2, (frames - 0.5) * hop, bottom, top))
    ticks = [f for f in (250, 500, 1000, 2000, 4000, 6000, 8000, 12000, 16000, 20000)
             if bottom <= float(_hz_to_mel(f)) <= top]
    ax.set_yticks([float(_hz_to_mel(f)) for f in ticks], [f"{f:g}" for f in ticks])
    ax.set_ylim(bottom, top)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz, mel scale)")
    ax.set_title(title, fontsize=9)
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    bar.set_label("level (dB)")
    return fig


def write_examples(split: str = "test") -> dict[str, dict]:
    """One spectrogram per emotion of the split, out of the shards: examples/<label>.png, the native image as a
    coloured preview (pixel for pixel what the model reads), and examples/<label>_labelled.png, the same image
    with its time, frequency and dB axes, corpus and file (spectrogram_figure). -> {label: {name, corpus,
    file, labelled}}."""
    import pyarrow.parquet as pq

    from pipeline import plotstyle
    from pipeline.dataset import split_of_rows
    from pipeline.features import preview_png
    from pipeline.model_card import shard_settings

    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for old in EXAMPLES_DIR.glob("*.png"):
        if old != TIMELINE_PNG:  # write_timeline's, drawn before
            old.unlink()
    found: dict[str, dict] = {}
    for shard in sorted(SHARDS.glob("*.parquet")):
        table = pq.read_table(shard, columns=["name", "label", "image", "augmented", "corpus", "utt_id",
                                              "source_path"]).to_pandas()
        table = table[split_of_rows(table) == split]
        settings = None
        for row in table.itertuples():
            if row.label not in found and not row.augmented:
                (EXAMPLES_DIR / f"{row.label}.png").write_bytes(preview_png(row.image))
                file = Path(row.source_path).name if isinstance(row.source_path, str) and row.source_path else row.name
                settings = settings or shard_settings([shard])
                fig = spectrogram_figure(row.image, settings, f"{row.label}: {row.corpus}, {file}")
                if fig is not None:
                    plotstyle.save(fig, EXAMPLES_DIR / f"{row.label}_labelled.png")
                found[row.label] = {"name": row.name, "corpus": row.corpus, "file": file,
                                    "labelled": fig is not None}
    return found


def write_timeline(model, card: dict, split_file: Path = SPLIT_FILE, png: Path = TIMELINE_PNG) -> dict | None:
    """A test speaker's clips, one per emotion (the speaker with the most emotions), joined with pauses over low
    noise into one recording (pipeline/joined_recording.py), scored through predict --segments' own path
    (predict.scored_segments: the detector's segments, normalised on the recording's own statistics as by default)
    and its timeline drawn into png as --plot draws it (pipeline/timeline.py). model: a runtime
    (pipeline/runtime.py); card: its card. -> {speaker, corpus, clips, seconds, normalisation, segments:
    joined_recording.segment_table}, or None when no test clip's audio is here (processed data pulled without the
    corpora)."""
    import tempfile

    import pandas as pd

    from pipeline import model_card, predict
    from pipeline.joined_recording import build_recording, segment_table
    from pipeline.segments import SegmentConfig
    from pipeline.timeline import plot_timeline

    png.unlink(missing_ok=True)  # an earlier run's picture never stands for this model
    table = pd.read_parquet(split_file, columns=["utt_id", "corpus", "speaker", "label", "path", "split"])
    test = table[table["split"] == "test"]
    test = test[[Path(p).is_file() for p in test["path"]]]
    if test.empty:
        return None
    emotions = test.groupby("speaker")["label"].nunique()
    speaker = sorted(emotions[emotions == emotions.max()].index)[0]
    clips = (test[test["speaker"] == speaker].sort_values("utt_id").groupby("label").head(1)
             .head(TIMELINE_CLIPS).rename(columns={"path": "file"}))
    acfg, fcfg = model_card.configs(card)
    cfgs = (acfg, fcfg, model_card.input_kinds(card), SegmentConfig.from_card(card))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / f"{speaker.replace(':', '_')}.wav"  # the picture's title names it
        truth = build_recording(clips, wav, seed=0)
        speakers = "recording" if predict.takes_statistics(card) else "none"  # predict --segments' default
        for recording, scored in predict.scored_segments([wav], card, cfgs, model, speakers):
            rows += scored or []
        if recording.error:
            raise RuntimeError(f"the timeline's recording {wav} could not be read back: {recording.error}")
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_timeline(png, recording, rows, card["labels"])
    return {"speaker": speaker, "corpus": str(clips["corpus"].iloc[0]), "clips": len(clips),
            "seconds": round(recording.duration, 1), "normalisation": rows[0]["normalisation"] if rows else None,
            "segments": segment_table(truth, rows)}


def timeline_lines(timeline: dict, picture: str = f"examples/{TIMELINE_PNG.name}") -> list[str]:
    """The report's section on write_timeline's recording: what it is, the picture, each segment beside the
    clips it holds."""
    from pipeline.joined_recording import PAUSES

    how = f"normalised as predict reports it: `{timeline['normalisation']}`" if timeline["normalisation"] \
        else "no speech found in it"
    lines = ["## A recording's timeline (predict --segments)", "",
             f"{timeline['clips']} test clips of `{timeline['speaker']}` ({timeline['corpus']}), one per emotion, "
             f"joined with pauses of {PAUSES[0]:g}-{PAUSES[1]:g} s over low noise into one "
             f"{timeline['seconds']:.0f}-s recording and scored by this report's model as "
             f"`python -m pipeline predict --segments --plot PNG --model {MODEL}` scores one ({how}): the "
             "recording's energy over time, each speech segment the detector found shaded in the emotion the model "
             "gave it. The table sets each segment beside the clip it holds and that clip's true emotion.", "",
             f"![timeline of {timeline['speaker']}'s clips joined]({picture})", ""]
    span = lambda a, b: "none found" if a is None else f"{a:.2f}-{b:.2f}"  # noqa: E731
    lines += _table(["segment (s)", "predicted", "confidence", "clip (s)", "file", "truth"],
                    [[span(r["start"], r["end"]), r["emotion"] or "", "" if r["confidence"] is None
                      else f"{r['confidence']:.2f}", span(r["clip_start"], r["clip_end"]),
                      " + ".join(f"`{f}`" for f in r["files"]) or "none", " + ".join(r["truth"])]
                     for r in timeline["segments"]])
    return lines + [""]


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def write_report(path: Path, params: dict, headline: dict, result: dict, timeline: dict | None = None) -> None:
    """timeline: write_timeline's, drawn before (write_examples keeps its picture)."""
    ingest = _read_json(INGEST_SUMMARY)
    split = _read_json(SPLIT_SUMMARY)
    train = _read_json(TRAIN_SUMMARY)
    curves = plot_curves()
    examples = write_examples()
    s = params.get("split", {})
    lines = [f"# Experiment report: {params.get('model')}", "",
             f"{date.today().isoformat()}; split `{s.get('strategy')}` (seed {s.get('seed')}); "
             f"channels `{params.get('features', {}).get('channels')}`; balance "
             f"`{params.get('balance', {}).get('method')}`"
             + ("; **demo corpus** (no corpus in data/raw/)" if ingest.get("used_demo") else ""), ""]
    lines += _release_lines(ingest)
    lines += ["## Test metrics", ""]
    lines += _table(["accuracy (WA)", "UAR (UA)", "macro F1", "weighted F1", "loss", "test files"],
                    [[f"{headline.get(k, float('nan')):.4f}" for k in ("accuracy", "uar", "macro_f1",
                                                                      "weighted_f1", "loss")]
                     + [headline.get("files")]])
    lines += ["", "## Per class", ""]
    lines += _table(["class", "precision", "recall", "F1", "support"],
                    [[lab, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                     for lab, v in result["per_class"].items()])
    lines += ["", "## Per corpus", ""]
    lines += _table(["corpus", "accuracy", "UAR", "macro F1", "files"],
                    [[c, f"{v['accuracy']:.3f}", f"{v['uar']:.3f}", f"{v['macro_f1']:.3f}", v["support"]]
                     for c, v in result["per_corpus"].items()])
    lines += ["", "## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", "",
              "Most frequent confusions: " + (", ".join(f"{c['actual']} -> {c['predicted']} ({c['count']})"
                                                        for c in result["top_confusions"]) or "none"), ""]
    lines += ["## Training", ""]
    if train:
        lines.append(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in
                               _flatten(train).items()))
        lines.append("")
    if curves:
        lines += ["![training curves](training_curves.png)", ""]
    if examples:
        lines += ["## Example spectrograms (test split)", "",
                  "One recording per emotion, as the model reads it: time on x, mel frequency on y, level in dB; "
                  "each links the raw image (`examples/<emotion>.png`, one pixel per frame and mel band).", ""]
        for lab, ex in examples.items():
            picture = f"examples/{lab}_labelled.png" if ex["labelled"] else f"examples/{lab}.png"
            lines += [f"### {lab}: {ex['corpus']}, `{ex['file']}`", "",
                      f"[![{lab}: {ex['corpus']}, {ex['file']}]({picture})](examples/{lab}.png)", ""]
    if timeline:
        lines += timeline_lines(timeline)
    lines += ["## Data", ""]
    if ingest:
        corpora = ingest.get("corpora", {})
        labels = sorted({lab for c in corpora.values() for lab in c.get("kept_by_label", {})})
        lines += _table(["corpus"] + labels + ["kept", "dropped", "excluded", "quarantined", "found"],
                        [[name] + [c["kept_by_label"].get(lab, 0) for lab in labels]
                         + [c["kept"], c["dropped"], c["excluded"], c["quarantined"], c["found"]]
                         for name, c in corpora.items()])
        lines.append("")
    if split:
        lines += _table(["split", "files", "speakers"],
                        [[k, v["files"], len(v["speakers"])] for k, v in split.get("splits", {}).items()])
        lines += [""] + [f"- {n}" for n in split.get("notes", [])] + [""]
    write_text(path, "\n".join(lines) + "\n")


def _release_lines(ingest: dict) -> list[str]:
    """Which copy of each corpus these results come from: figures on a modified copy are not comparable
    with figures on the official release."""
    verdicts = [(name, c["release"]["verdict"]) for name, c in ingest.get("corpora", {}).items()
                if c.get("release", {}).get("verdict")]
    if not verdicts:
        return []
    return (["Corpus copies, checked against the official releases' checksums:", ""]
            + [f"- {name}: {verdict}" for name, verdict in verdicts] + [""])


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out
