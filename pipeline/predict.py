"""predict: emotion of new recordings with the trained model.

`python -m pipeline predict PATH... [--json | --csv] [--per-window]`. Files and folders (wav, flac,
ogg, aiff, mp3 where the audio stack reads them). The audio goes through exactly the standardise +
render code of training (pipeline.audio, pipeline.features); recordings longer than the window are
scored on overlapping windows and the probabilities averaged. An unreadable input gets a per-file
error and the others are still scored; the exit status is non-zero only when every input failed.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.corpora.base import is_audio
from pipeline.errors import UserError
from pipeline.paths import CARD_NAME, MODEL

HOP_SECONDS = 1.5  # windows overlap by half of the 3 s window
CHUNK_FILES = 256  # files scored (and printed) at a time, so memory stays flat on a large folder
PARALLEL_FROM = 16  # files; fewer are prepared in this process (a worker pool costs more than it saves)


@dataclass
class Prepared:
    path: str
    inputs: list = field(default_factory=list)  # one model input per window
    error: str | None = None


def collect(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_audio(f))
        else:
            files.append(p)  # a missing or non-audio file gets its own per-file error below
    return files


def prepare(path: Path, acfg, fcfg, input_kind: str) -> Prepared:
    """Audio -> model inputs per window, with the training code path. No Keras here."""
    from pipeline import audio, features

    out = Prepared(str(path))
    try:
        if not path.exists():
            raise audio.AudioFormatError("no such file")
        samples, sr = audio.read(path)
        reason = audio.check(samples, sr, 0.0, -120.0)
        if reason:
            raise audio.AudioFormatError(reason)
        if input_kind in features.FUNCTIONAL_KINDS and fcfg.functionals_on == "speech":
            # utterance functionals over the whole trimmed recording, as render takes them: one input per file
            speech = audio.prepare(samples, sr, acfg)
            out.inputs.append(np.asarray(features.outputs(None, acfg.sample_rate, fcfg, (input_kind,), speech)
                                         [input_kind], dtype=np.float32))
            return out
        for y in audio.windows(samples, sr, acfg, hop=HOP_SECONDS):
            rendered = features.render(y, acfg.sample_rate, fcfg)
            if input_kind == "image":
                out.inputs.append(features.decode_png(rendered.png).astype(np.float32) / 255.0)
            else:
                x = np.asarray(rendered.extras[input_kind], dtype=np.float32)
                out.inputs.append(x[..., None] if input_kind == "mfcc" else x)
    except Exception as exc:  # per-file error; the other files are still scored
        out.error = str(exc) if isinstance(exc, audio.AudioFormatError) else f"{type(exc).__name__}: {exc}"
    return out


def _prepare_job(job) -> Prepared:
    return prepare(*job)


def prepared_chunks(files: list[Path], acfg, fcfg, input_kind: str, chunk: int = CHUNK_FILES):
    """Prepared files in order, `chunk` at a time, across processes when there are many."""
    from pipeline.parallel import imap
    from pipeline.params import available_cpus

    workers = 1 if len(files) < PARALLEL_FROM else available_cpus()
    jobs = [(f, acfg, fcfg, input_kind) for f in files]
    batch = []
    for item in imap(_prepare_job, jobs, workers, desc="predict: audio", chunksize=4):
        batch.append(item)
        if len(batch) == chunk:
            yield batch
            batch = []
    if batch:
        yield batch


def score(model, prepared: list[Prepared], labels: list[str], transform=None) -> list[dict]:
    """Probabilities per file (mean over its windows); `transform` maps the stacked inputs to the model's
    (speaker standardisation)."""
    rows = []
    batch = [x for p in prepared if not p.error for x in p.inputs]
    x = np.stack(batch) if batch else None
    if x is not None and transform is not None:
        x = transform(x, prepared)
    probs = np.asarray(model.predict(x, verbose=0)) if batch else np.zeros((0, len(labels)))
    i = 0
    for p in prepared:
        if p.error:
            rows.append({"path": p.path, "error": p.error})
            continue
        window_probs = probs[i:i + len(p.inputs)]
        i += len(p.inputs)
        mean = window_probs.mean(axis=0)
        rows.append({"path": p.path, "emotion": labels[int(mean.argmax())], "confidence": float(mean.max()),
                     "windows": len(p.inputs), "probabilities": dict(zip(labels, map(float, mean))),
                     "per_window": [dict(zip(labels, map(float, w))) for w in window_probs]})
    return rows




def speaker_transform(prepared: list[Prepared], card: dict, speakers: str):
    """Speaker standardisation for predict: statistics of each speaker's windows (all inputs one speaker, or
    one per folder), or of the training population for a speaker with fewer windows than training needs
    rows of a speaker (pipeline.dataset.MIN_SPEAKER_ROWS), as evaluate does."""
    from pipeline.dataset import MIN_SPEAKER_ROWS as MIN_SPEAKER_WINDOWS, zscore

    def speaker_of(p: Prepared) -> str:
        return str(Path(p.path).parent) if speakers == "folder" else "inputs"

    rows: dict[str, list] = {}
    for p in prepared:
        if not p.error:
            rows.setdefault(speaker_of(p), []).extend(p.inputs)
    small = [s for s, xs in rows.items() if len(xs) < MIN_SPEAKER_WINDOWS]
    if small:
        print(f"note: {len(small)} speaker group(s) with fewer than {MIN_SPEAKER_WINDOWS} windows are standardised "
              f"on the training speakers' statistics (less accurate: give a speaker's recordings together, "
              f"see --speakers)", file=sys.stderr)
    population = tuple(np.asarray(card["population"][k], np.float32) for k in ("mean", "std")) if small else None
    stats = {spk: population if spk in small else (np.stack(xs).mean(axis=0), np.stack(xs).std(axis=0))
             for spk, xs in rows.items()}

    def transform(x: np.ndarray, chunk: list[Prepared]) -> np.ndarray:
        who = [speaker_of(p) for p in chunk if not p.error for _ in p.inputs]
        out = np.empty_like(x)
        for i, spk in enumerate(who):
            out[i] = zscore(x[i], *stats[spk])
        return out

    return transform


def format_table(rows: list[dict], labels: list[str], per_window: bool, width: int = 0,
                 header: bool = True) -> str:
    """[A header line and a rule, then] one line per file (and per window with per_window)."""
    width = max([width, 4] + [len(r["path"]) for r in rows])
    head = f"{'file':<{width}}  {'emotion':<9} {'conf':>5}  " + " ".join(f"{lab[:7]:>7}" for lab in labels)
    out = [head, "-" * len(head)] if header else []
    for r in rows:
        if "error" in r:
            out.append(f"{r['path']:<{width}}  error: {r['error']}")
            continue
        out.append(f"{r['path']:<{width}}  {r['emotion']:<9} {r['confidence']:>5.2f}  "
                   + " ".join(f"{r['probabilities'][lab]:>7.3f}" for lab in labels))
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
    parser.add_argument("--per-window", action="store_true", help="also show each window's probabilities")
    parser.add_argument("--model", default=str(MODEL), help="trained model (default: %(default)s)")
    parser.add_argument("--speakers", choices=("one", "folder"), default="one",
                        help="for a speaker-standardised model: whose statistics standardise each file: all "
                             "inputs are one speaker (default) or each folder is one speaker")
    args = parser.parse_args(argv)

    from pipeline import model_card

    model_path = Path(args.model)
    card_path = model_path.with_name(CARD_NAME)  # the model card beside the model
    if not model_path.exists():
        raise UserError(f"{model_path} not found: run `dvc repro` to train a model")
    card = model_card.read(card_path)  # the settings the model was trained with, not today's params.yaml
    labels = card["labels"]
    files = collect(args.paths)
    if not files:
        raise UserError("no audio files found in: " + ", ".join(args.paths))
    acfg, fcfg = model_card.configs(card)
    chunks = prepared_chunks(files, acfg, fcfg, card["input"])
    transform = None
    if card.get("speaker_norm"):
        # a speaker's statistics need all of that speaker's files first: prepare everything, then score
        chunks = list(chunks)
        transform = speaker_transform([p for c in chunks for p in c], card, args.speakers)
    model = None
    scored_files, failed = 0, 0
    writer = None
    width = max(len(str(f)) for f in files)  # one column width for every chunk's lines
    for chunk in chunks:
        if model is None and any(not p.error for p in chunk):  # Keras only once there is audio to score
            from pipeline.evaluate import load_model_file

            model = load_model_file(model_path)
        scored = score(model, chunk, labels, transform)
        if args.json:
            for r in scored:
                if not args.per_window:
                    r.pop("per_window", None)
                print(json.dumps(r), flush=True)
        elif args.csv:
            if writer is None:
                writer = csv.writer(sys.stdout)
                writer.writerow(["path", "emotion", "confidence", "windows"] + labels + ["error"])
            for r in scored:
                if "error" in r:
                    writer.writerow([r["path"], "", "", ""] + [""] * len(labels) + [r["error"]])
                else:
                    writer.writerow([r["path"], r["emotion"], f"{r['confidence']:.4f}", r["windows"]]
                                    + [f"{r['probabilities'][lab]:.4f}" for lab in labels] + [""])
        else:
            print(format_table(scored, labels, args.per_window, width=width,
                               header=scored_files == 0), flush=True)
        scored_files += len(scored)
        failed += sum("error" in r for r in scored)
    if failed:
        print(f"{failed} of {scored_files} files could not be scored", file=sys.stderr)
    if failed == scored_files:
        raise UserError("every input failed")


if __name__ == "__main__":
    from pipeline.cli import run_main

    sys.exit(run_main(main))
