"""predict: emotion of new recordings with the trained model.

`python -m pipeline predict PATH... [--json | --csv] [--per-window] [--speakers none|one|folder|recording]
[--enroll DIR [--enroll-neutral]] [--segments [--plot PNG]] [--min-confidence P]`.
Files and folders (wav, flac, ogg, aiff, mp3 where the audio stack reads them). The audio goes through exactly
the standardise + render code of training (pipeline.audio, pipeline.features); recordings longer than the
window are scored on overlapping windows and the probabilities averaged. An unreadable input gets a per-file
error and the others are still scored; the exit status is non-zero only when every input failed.

Speaker normalisation (the model card's, pipeline/normalisation.py) needs statistics of the speaker. By
default a file gets none, the training population's statistics (the `cold` figure of cross-validation):
what one file of a stranger gets. `--enroll DIR` learns the speaker of every input from the recordings in DIR
(cross-validation's `enrolled` figures; with `--enroll-neutral`, recordings of everyday, neutral speech, moved by
the card's offset from a speaker's neutral clips to its mean: `enrolled_neutral`); `--speakers one|folder` takes all inputs, or each folder, as one
speaker and normalises it on its own recordings (the `transductive` figure). A speaker's statistics come from
one clip per recording, made as training made it (the recording's trimmed speech fitted to the window), so
clips are counted as in training; a speaker with fewer than the card's min_clips recordings gets the
population's, or with `train.normalisation_shrinkage` (the default) the population's mean moved towards the
speaker's the more recordings there are. Every output row says which statistics it got.

`--segments` (long recordings: calls, interviews): WebRTC's voice activity detector finds the speech segments
(pipeline/segments.py, the card's thresholds) while the file is read a block at a time; each segment is prepared
as a file is and gets its own row, with its start and end in seconds of the recording. A recording is then one
speaker's by default (`--speakers recording`): its own segments, one clip each, give its statistics (all of them
are needed first, so its rows come at its end); `--speakers none` scores every segment cold as it closes,
`--enroll` on the enrolled statistics, `one`/`folder` pool the segments of every input or folder (a first pass
reads them). A recording with no speech gets one row saying so. `--min-confidence P`: a file or segment whose
top probability is below P says `uncertain`, its probabilities kept. `--plot PNG` draws one recording's timeline
(pipeline/timeline.py).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.files import is_audio
from pipeline.errors import UserError
from pipeline.paths import CARD_NAME, FINAL_MODEL, MODEL, shipped_model

HOP_SECONDS = 1.5  # windows overlap by half of the 3 s window
CHUNK_FILES = 256  # files scored (and printed) at a time, so memory stays flat on a large folder
PARALLEL_FROM = 16  # files; fewer are prepared in this process (a worker pool costs more than it saves)


@dataclass
class Prepared:
    path: str
    windows: list = field(default_factory=list)  # raw model inputs per window: {input kind: array}
    clip: dict | None = None  # the raw inputs of the clip training would have made of this recording
    error: str | None = None
    start: float | None = None  # a speech segment's (--segments): seconds of the recording
    end: float | None = None


def collect(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_audio(f))
        else:
            files.append(p)  # a missing or non-audio file gets its own per-file error below
    return files


def raw_inputs(rendered, kinds: tuple) -> dict:
    """A rendered clip -> the raw model inputs, as the shards hold them (the image decoded, not scaled)."""
    from pipeline import features

    out = {}
    for kind in kinds:
        if kind == "image":
            out[kind] = features.decode_png(rendered.png)
        else:
            x = np.asarray(rendered.extras[kind], dtype=np.float32)
            out[kind] = x[..., None] if kind == "mfcc" else x
    return out


def prepare_recording(recording: tuple, acfg, fcfg, kinds: tuple, windows: bool = True) -> tuple[list, dict]:
    """A recording (mono samples, sample rate) as read -> (raw model inputs per window, the raw inputs of the
    training clip), with the training code path: a file, or one speech segment of a long one. No Keras.
    windows=False: no windows, the training clip only (a speaker's statistics)."""
    from pipeline import audio, features

    speech = audio.prepare(*recording, acfg)
    # utterance functionals over the whole trimmed recording (eGeMAPS: over the recording as read), as
    # render takes them: one per file
    per_file = [k for k in kinds if k in features.RECORDING_KINDS
                or (k in features.FUNCTIONAL_KINDS and fcfg.functionals_on == "speech")]
    functionals = ({k: np.asarray(v, dtype=np.float32) for k, v in
                    features.outputs(None, acfg.sample_rate, fcfg, per_file, speech,
                                     recording).items()} if per_file else {})
    per_window = tuple(k for k in kinds if k not in per_file)
    window_cfg = dataclasses.replace(fcfg, extra=tuple(k for k in fcfg.extra if k not in per_file))

    def inputs_of(y: np.ndarray) -> dict:
        got = raw_inputs(features.render(y, acfg.sample_rate, window_cfg), per_window) if per_window else {}
        return {**got, **functionals}

    cuts = audio.cut_windows(speech, acfg, hop=HOP_SECONDS) if per_window else [None]
    cut = [inputs_of(y) for y in cuts] if windows else []
    if windows and len(cuts) == 1:  # no longer than the window: its one window is the training clip
        return cut, cut[0]
    return cut, inputs_of(audio.fit(speech, acfg.n_samples) if per_window else None)


def prepare(path: Path, acfg, fcfg, kinds: tuple, windows: bool = True) -> Prepared:
    """Audio -> raw model inputs per window and of the training clip, with the training code path. No Keras.
    windows=False: the training clip only (a speaker's statistics)."""
    from pipeline import audio

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    out = Prepared(str(path))
    try:
        if not path.exists():
            raise audio.AudioFormatError("no such file")
        samples, sr = audio.read(path)
        reason = audio.check(samples, sr, 0.0, -120.0)
        if reason:
            raise audio.AudioFormatError(reason)
        recording = (audio.mono(samples), int(sr))  # converted once: prepare's own mono of it is a no-op
        out.windows, out.clip = prepare_recording(recording, acfg, fcfg, kinds, windows)
    except Exception as exc:  # per-file error; the other files are still scored
        out.error = error_text(exc)
    return out


def error_text(exc: Exception) -> str:
    from pipeline import audio

    return str(exc) if isinstance(exc, audio.AudioFormatError) else f"{type(exc).__name__}: {exc}"


def _prepare_job(job) -> Prepared:
    return prepare(*job)


def prepared_chunks(files: list[Path], acfg, fcfg, kinds, chunk: int = CHUNK_FILES, windows: bool = True):
    """Prepared files in order, `chunk` at a time, across processes when there are many."""
    from pipeline.parallel import imap
    from pipeline.params import available_cpus

    workers = 1 if len(files) < PARALLEL_FROM else available_cpus()
    jobs = [(f, acfg, fcfg, kinds, windows) for f in files]
    batch = []
    for item in imap(_prepare_job, jobs, workers, desc="predict: audio", chunksize=4):
        batch.append(item)
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------------------ speakers

SPEAKER_MODES = ("none", "one", "folder")


def speaker_of(path: str, speakers: str) -> str | None:
    """The speaker group of an input: none (no statistics), one (every input), or its folder."""
    if speakers == "folder":
        return str(Path(path).parent)
    return "inputs" if speakers == "one" else None


def takes_statistics(card: dict) -> bool:
    """Whether the card's model normalises an input on statistics (a speaker's, or the population's for a
    stranger): a model that does not is scored with none whatever --speakers says (the report's timeline too)."""
    from pipeline import model_card

    return any(n.mode in ("speaker", "population") for n in model_card.normalisers(card).values())


def speaker_statistics(files: list[Path], card: dict, acfg, fcfg, group_of, source: str,
                       neutral: bool = False) -> tuple[dict, list]:
    """{group: {kind: Statistics}} accumulated over each group's recordings (one training clip per recording,
    a chunk at a time: memory stays flat), and the per-file errors met on the way."""
    from pipeline import model_card

    kinds = model_card.input_kinds(card)
    norms = model_card.normalisers(card)
    acc: dict = {}
    errors = []
    for chunk in prepared_chunks(files, acfg, fcfg, kinds, windows=False):
        for p in chunk:
            if p.error:
                errors.append(p)
                continue
            group = group_of(p.path)
            if group not in acc:
                acc[group] = model_card.StatisticsAccumulator(card, norms, source, neutral=neutral)
            acc[group].add({k: v[None] for k, v in p.clip.items()})
    return {g: a.statistics() for g, a in acc.items()}, errors


# ------------------------------------------------------------------------------------------------ scoring

def score(model, prepared: list[Prepared], card: dict, group_of=None, statistics: dict | None = None) -> list[dict]:
    """Probabilities per file (the mean over its windows) and the statistics that normalised it.
    model: a runtime (pipeline/runtime.py: .predict({kind: inputs}) -> probabilities); group_of(path) -> its
    speaker group (None: no statistics); statistics: {group: {kind: Statistics}}."""
    from pipeline import model_card

    labels = card["labels"]
    ok = [p for p in prepared if not p.error]
    rows, used = [], np.array([], dtype=object)
    probs = np.zeros((0, len(labels)), dtype=np.float32)
    if ok:
        kinds = model_card.input_kinds(card)
        raw = {k: np.stack([w[k] for p in ok for w in p.windows]) for k in kinds}
        groups = None
        if group_of is not None:
            groups = np.array([group_of(p.path) for p in ok for _ in p.windows], dtype=object)
            if all(g is None for g in groups):
                groups = None
        x, used = model_card.model_inputs(raw, card, speakers=groups, statistics=statistics)
        probs = model.predict(x)
    i = 0
    for p in prepared:
        where = {} if p.start is None else {"start": round(p.start, 3), "end": round(p.end, 3)}
        if p.error:
            rows.append({"path": p.path, **where, "error": p.error})
            continue
        n = len(p.windows)
        window_probs, how = probs[i:i + n], str(used[i])
        i += n
        # the windows' mean is the decision (as crossval scores a clip); the card's temperature then says how sure
        # it is, scaling the mean once, so calibration never changes an answer. per_window: the model's own
        # probabilities of each window, whose mean the file's are (calibrated)
        mean = model_card.calibrate(window_probs.mean(axis=0)[None], card, [how])[0]
        rows.append({"path": p.path, **where, "emotion": labels[int(mean.argmax())], "confidence": float(mean.max()),
                     "windows": n, "normalisation": how, "probabilities": dict(zip(labels, map(float, mean))),
                     "per_window": [dict(zip(labels, map(float, w))) for w in window_probs]})
    return rows


def abstain(rows: list[dict], min_confidence: float | None) -> list[dict]:
    """Rows whose top probability is below min_confidence say `uncertain` (their probabilities kept)."""
    if min_confidence:
        for r in rows:
            if r.get("emotion") and r["confidence"] < min_confidence:
                r["emotion"] = UNCERTAIN
    return rows


# ------------------------------------------------------------------------------------------------ segments

UNCERTAIN = "uncertain"
NO_SPEECH = "no speech found"
BLOCK_SECONDS = 30.0  # audio read at a time (--segments): what memory holds of a recording, with one segment
SEGMENT_BATCH = 16  # segments scored (and printed) at a time when their statistics are known beforehand
# windows of one recording kept in memory for its own normalisation (a window's inputs: ~40 KB with the
# default model, so ~160 MB, ~100 minutes of speech); a longer recording is read twice, its statistics first
KEEP_WINDOWS = 4000


class Recording:
    """One recording's speech segments, each prepared (as a file is) once the detector closes it; the audio is
    read a block at a time. After iterating: duration (s), energy (dB per detector frame), frame_s, error."""

    def __init__(self, path: Path, acfg, fcfg, kinds: tuple, scfg, windows: bool = True,
                 block_seconds: float = BLOCK_SECONDS):
        self.path, self.acfg, self.fcfg, self.kinds, self.scfg = Path(path), acfg, fcfg, tuple(kinds), scfg
        self.windows, self.block_seconds = windows, block_seconds
        self.duration, self.energy, self.frame_s, self.error = 0.0, [], scfg.frame_ms / 1000.0, None

    def __iter__(self):
        from pipeline import audio
        from pipeline.segments import Segmenter

        segmenter = Segmenter(self.scfg)
        self.error = None
        try:
            if not self.path.exists():
                raise audio.AudioFormatError("no such file")
            sr, self.duration, blocks = audio.read_blocks(self.path, self.block_seconds)
            for seg in segmenter.segments(blocks, sr):
                out = Prepared(str(self.path), start=seg.start, end=seg.end)
                try:
                    out.windows, out.clip = prepare_recording((seg.samples, sr), self.acfg, self.fcfg, self.kinds,
                                                              self.windows)
                except Exception as exc:  # this segment's error; the others are still scored
                    out.error = error_text(exc)
                yield out
            self.duration = segmenter.duration
        except Exception as exc:  # the recording's error (unreadable, truncated midway)
            self.error = error_text(exc)
        self.energy = segmenter.energy


class LazyModel:
    """The runtime, loaded when the first segment is scored (Keras only once there is audio to score)."""

    def __init__(self, path: Path, kinds: tuple):
        self.path, self.kinds, self.model = path, kinds, None

    def predict(self, x: dict) -> np.ndarray:
        if self.model is None:
            from pipeline import runtime

            self.model = runtime.load(self.path, self.kinds)
        return self.model.predict(x)


def _batches(items, n: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def segment_statistics(files: list[Path], card: dict, cfgs: tuple, group_of, source: str,
                       block_seconds: float = BLOCK_SECONDS) -> dict:
    """{group: {kind: Statistics}} over the segments of each group's recordings (one clip per segment, as
    training counts clips), the audio streamed; unreadable recordings are left to the scoring pass to report."""
    from pipeline import model_card

    norms = model_card.normalisers(card)
    acc: dict = {}
    for f in files:
        for p in Recording(f, *cfgs, windows=False, block_seconds=block_seconds):
            if p.error:
                continue
            group = group_of(p.path)
            if group not in acc:
                acc[group] = model_card.StatisticsAccumulator(card, norms, source)
            acc[group].add({k: v[None] for k, v in p.clip.items()})
    return {g: a.statistics() for g, a in acc.items()}


def scored_segments(files: list[Path], card: dict, cfgs: tuple, model, speakers: str = "recording",
                    statistics: dict | None = None, block_seconds: float = BLOCK_SECONDS):
    """Per recording, its segments' rows a batch at a time, then its end: yields (Recording, rows) and
    (Recording, None). cfgs: (AudioConfig, FeatureConfig, kinds, SegmentConfig).
    speakers: recording (each recording normalised on its own segments' statistics), none (cold), one or
    folder (the segments of every input, or of each folder, one speaker's: a first pass takes its statistics);
    statistics given: {"enrolled": ...}, every segment normalised on them."""
    from pipeline import model_card

    group_of = None
    if statistics is not None:
        group_of = lambda path: "enrolled"  # noqa: E731
    elif speakers in ("one", "folder"):
        group_of = lambda path: speaker_of(path, speakers)  # noqa: E731
        statistics = segment_statistics(files, card, cfgs, group_of, "speaker", block_seconds)
    for f in files:
        recording = Recording(f, *cfgs, block_seconds=block_seconds)
        if speakers != "recording" or group_of is not None:  # the statistics are known: score as segments close
            for batch in _batches(recording, SEGMENT_BATCH):
                yield recording, score(model, batch, card, group_of, statistics)
            yield recording, None
            continue
        # its own statistics need all of its segments first: kept, or when too many, read again
        acc = model_card.StatisticsAccumulator(card, source="recording")
        kept, windows = [], 0
        for p in recording:
            if not p.error:
                acc.add({k: v[None] for k, v in p.clip.items()})
                windows += len(p.windows)
            if kept is not None:
                kept.append(p)
            if windows > KEEP_WINDOWS:
                kept = None
        if kept is None:
            kept = Recording(f, *cfgs, block_seconds=block_seconds)
        own = {str(f): acc.statistics()} if kept else None
        for batch in _batches(kept, SEGMENT_BATCH):
            yield recording, score(model, batch, card, lambda path: path, own)
        yield recording, None


def no_speech_row(recording: Recording) -> dict:
    return {"path": str(recording.path), "start": 0.0, "end": round(recording.duration, 3), "emotion": None,
            "note": NO_SPEECH}


def format_segment_table(rows: list[dict], labels: list[str], width: int = 0, header: bool = True) -> str:
    """[A header line and a rule, then] one line per segment: its start and end in seconds of the recording."""
    width = max([width, 4] + [len(r["path"]) for r in rows])
    how = max([13] + [len(r.get("normalisation", "")) for r in rows])
    head = (f"{'file':<{width}}  {'start':>8} {'end':>8}  {'emotion':<9} {'conf':>5}  "
            + " ".join(f"{lab[:7]:>7}" for lab in labels) + f"  {'normalisation':<{how}}")
    out = [head, "-" * len(head)] if header else []
    for r in rows:
        at = (f"{r['start']:>8.2f} {r['end']:>8.2f}" if r.get("start") is not None else " " * 17)
        if "error" in r:
            out.append(f"{r['path']:<{width}}  {at}  error: {r['error']}")
        elif r.get("note"):
            out.append(f"{r['path']:<{width}}  {at}  {r['note']}")
        else:
            out.append(f"{r['path']:<{width}}  {at}  {r['emotion']:<9} {r['confidence']:>5.2f}  "
                       + " ".join(f"{r['probabilities'][lab]:>7.3f}" for lab in labels)
                       + f"  {r['normalisation']}")
    return "\n".join(out)


def format_table(rows: list[dict], labels: list[str], per_window: bool, width: int = 0,
                 header: bool = True) -> str:
    """[A header line and a rule, then] one line per file (and per window with per_window)."""
    width = max([width, 4] + [len(r["path"]) for r in rows])
    how = max([13] + [len(r.get("normalisation", "")) for r in rows])
    head = (f"{'file':<{width}}  {'emotion':<9} {'conf':>5}  " + " ".join(f"{lab[:7]:>7}" for lab in labels)
            + f"  {'normalisation':<{how}}")
    out = [head, "-" * len(head)] if header else []
    for r in rows:
        if "error" in r:
            out.append(f"{r['path']:<{width}}  error: {r['error']}")
            continue
        out.append(f"{r['path']:<{width}}  {r['emotion']:<9} {r['confidence']:>5.2f}  "
                   + " ".join(f"{r['probabilities'][lab]:>7.3f}" for lab in labels) + f"  {r['normalisation']}")
        if per_window and r["windows"] > 1:
            for k, w in enumerate(r["per_window"]):
                top = max(w, key=w.get)
                start = k * HOP_SECONDS
                out.append(f"{'  window ' + f'{start:.1f}s':<{width}}  {top:<9} {w[top]:>5.2f}  "
                           + " ".join(f"{w[lab]:>7.3f}" for lab in labels))
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="audio files or folders")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON lines, one object per file")
    fmt.add_argument("--csv", action="store_true", help="CSV with one probability column per class")
    parser.add_argument("--per-window", action="store_true",
                        help="also show each window's probabilities (the model's own: the file's are their mean, "
                             "calibrated)")
    parser.add_argument("--model", default=None,
                        help=f"trained model: a .keras file, an exported SavedModel folder or .tflite file, its "
                             f"card.json beside it (default: {FINAL_MODEL}, every labelled speaker with the recipe "
                             f"crossval measured; without it, the train stage's single-split {MODEL})")
    parser.add_argument("--segments", action="store_true",
                        help="speech segments of long recordings (calls, interviews): a voice activity detector "
                             "finds them, one row each with its start and end in seconds; the recording is read a "
                             "block at a time (thresholds: the model card's `segments`)")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="P",
                        help="a file or segment whose top probability is below P is reported as `uncertain` "
                             "(its probabilities kept)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="with --segments and one recording: draw its timeline (energy, each segment coloured "
                             "by its emotion, uncertain grey) into PNG")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--speakers", choices=SPEAKER_MODES + ("recording",), default=None,
                     help="whose statistics normalise each input: none (the training population's, as for one "
                          "file of a stranger: the default without --segments), one (all inputs are one "
                          "speaker), folder (each folder is one speaker), recording (with --segments, the "
                          "default: each recording is one speaker, normalised on its own segments, one clip "
                          "each; `--speakers none` keeps every segment cold)")
    who.add_argument("--enroll", metavar="DIR",
                     help="recordings of the speaker of every input, to learn that speaker's statistics from "
                          "(not themselves scored)")
    parser.add_argument("--enroll-neutral", action="store_true",
                        help="with --enroll: the enrolment recordings are neutral, everyday speech; their mean is "
                             "moved to where training centred a speaker (its acted mix), by the card's offset")
    args = parser.parse_args(argv)
    if args.enroll_neutral and not args.enroll:
        raise UserError("--enroll-neutral describes the recordings of --enroll DIR: give --enroll too")
    if args.speakers == "recording" and not args.segments:
        raise UserError("--speakers recording normalises a recording on its own segments: give --segments too "
                        "(a file alone is one clip)")
    if args.speakers is None:
        args.speakers = "recording" if args.segments else "none"
    if args.plot and not args.segments:
        raise UserError("--plot draws a recording's segments: give --segments too")
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 1:
        raise UserError(f"--min-confidence {args.min_confidence:g}: a probability, 0..1")

    from pipeline import model_card

    model_path = Path(args.model) if args.model else shipped_model()
    if args.model is None and model_path != FINAL_MODEL and model_path.exists():
        print(f"note: {FINAL_MODEL} not found (dvc repro final): using the train stage's single-split model "
              f"{model_path}, trained on fewer speakers than cross-validation measured", file=sys.stderr)
    if not model_path.exists():
        raise UserError(f"{model_path} not found: run `dvc repro` to train a model")
    card = model_card.read(model_path.with_name(CARD_NAME))  # the settings it was trained with, not params.yaml
    labels = card["labels"]
    files = collect(args.paths)
    if not files:
        raise UserError("no audio files found in: " + ", ".join(args.paths))
    acfg, fcfg = model_card.configs(card)
    kinds = model_card.input_kinds(card)
    normalised = takes_statistics(card)
    group_of, statistics = None, None
    if normalised and args.enroll:
        enrol = collect([args.enroll])
        if not enrol:
            raise UserError(f"--enroll {args.enroll}: no audio files found")
        statistics, bad = speaker_statistics(enrol, card, acfg, fcfg, lambda path: "enrolled", "enrolled",
                                             neutral=args.enroll_neutral)
        if not statistics:
            raise UserError(f"--enroll {args.enroll}: no recording could be read")
        print(f"note: enrolled the speaker on {statistics['enrolled'][next(iter(statistics['enrolled']))].clips} "
              f"recordings of {args.enroll}" + (f" ({len(bad)} unreadable)" if bad else ""), file=sys.stderr)
        group_of = lambda path: "enrolled"  # noqa: E731
    elif normalised and args.speakers != "none" and not args.segments:
        group_of = lambda path: speaker_of(path, args.speakers)  # noqa: E731
        # a speaker's statistics need all of that speaker's recordings first: a first pass reads them
        statistics, _ = speaker_statistics(files, card, acfg, fcfg, group_of, "speaker")
    if args.segments:
        if args.plot and len(files) != 1:
            raise UserError(f"--plot draws one recording's timeline: give one file ({len(files)} found)")
        return predict_segments(args, files, card, model_path, statistics if normalised else None,
                                args.speakers if normalised else "none")
    model = None
    scored_files, failed = 0, 0
    writer = None
    width = max(len(str(f)) for f in files)  # one column width for every chunk's lines
    for chunk in prepared_chunks(files, acfg, fcfg, kinds):
        if model is None and any(not p.error for p in chunk):  # Keras only once there is audio to score
            from pipeline import runtime

            model = runtime.load(model_path, kinds)
        scored = abstain(score(model, chunk, card, group_of, statistics), args.min_confidence)
        if args.json or args.csv:
            writer = print_rows(scored, args, labels, writer)
        else:
            print(format_table(scored, labels, args.per_window, width=width,
                               header=scored_files == 0), flush=True)
        scored_files += len(scored)
        failed += sum("error" in r for r in scored)
    if failed:
        print(f"{failed} of {scored_files} files could not be scored", file=sys.stderr)
    if failed == scored_files:
        raise UserError("every input failed")


def print_rows(rows: list[dict], args, labels: list[str], writer=None, at: tuple = (), last: str = "error",
               note=lambda r: r["error"]):
    """--json: one JSON line per row (its per_window only with --per-window); --csv: one CSV row per row, the
    header first (writer None) -> the CSV writer to pass on (None with --json). at: the columns after the path (a
    segment's start and end); a row without an emotion (an error, no speech) has note(row) in the last column."""
    if args.json:
        for r in rows:
            if not args.per_window:
                r.pop("per_window", None)
            print(json.dumps(r), flush=True)
        return writer
    if writer is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(["path", *at, "emotion", "confidence", "windows", "normalisation"] + labels + [last])
    for r in rows:
        where = [r.get(k, "") for k in at]
        if r.get("emotion") is not None:
            writer.writerow([r["path"], *where, r["emotion"], f"{r['confidence']:.4f}", r["windows"],
                             r["normalisation"]] + [f"{r['probabilities'][lab]:.6f}" for lab in labels] + [""])
        else:
            writer.writerow([r["path"], *where, "", "", "", ""] + [""] * len(labels) + [note(r)])
    return writer


def predict_segments(args, files: list[Path], card: dict, model_path: Path, statistics: dict | None,
                     speakers: str) -> None:
    """predict --segments: one row per speech segment of each recording, printed as the segments are scored."""
    from pipeline import model_card
    from pipeline.segments import SegmentConfig

    labels = card["labels"]
    acfg, fcfg = model_card.configs(card)
    cfgs = (acfg, fcfg, model_card.input_kinds(card), SegmentConfig.from_card(card))
    if "segments" not in card:
        print("note: the model card carries no segment settings (trained before them): today's defaults",
              file=sys.stderr)
    width = max(len(str(f)) for f in files)
    writer, header, failed = None, True, 0
    timeline: list[dict] = []

    def emit(rows: list[dict]) -> None:
        nonlocal writer, header
        if args.json or args.csv:
            writer = print_rows(rows, args, labels, writer, at=("start", "end"), last="note",
                                note=lambda r: f"error: {r['error']}" if "error" in r else r.get("note", ""))
        else:
            print(format_segment_table(rows, labels, width=width, header=header), flush=True)
            header = False

    found = 0
    for recording, rows in scored_segments(files, card, cfgs, LazyModel(model_path, cfgs[2]), speakers, statistics):
        if rows is not None:
            rows = abstain(rows, args.min_confidence)
            found += len(rows)
            timeline += rows if args.plot else []
            emit(rows)
            continue
        if recording.error:
            failed += 1
            emit([{"path": str(recording.path), "error": recording.error}])
        elif found == 0:
            emit([no_speech_row(recording)])
        if args.plot and not recording.error:
            from pipeline.timeline import plot_timeline

            plot_timeline(Path(args.plot), recording, timeline, labels)
            print(f"note: wrote the timeline of {recording.path} to {args.plot}", file=sys.stderr)
        found, timeline = 0, []
    if failed:
        print(f"{failed} of {len(files)} files could not be scored", file=sys.stderr)
    if failed == len(files):
        raise UserError("every input failed")


if __name__ == "__main__":
    from pipeline.cli import run_main

    sys.exit(run_main(main))
