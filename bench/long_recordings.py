"""predict --segments on long recordings of real speech, with models that never heard the speaker (issue 38).

    python bench/long_recordings.py [--corpus emodb ravdess] [--part test|val] [--segments key=value,...]
                                    [--time-10min] [--memory-2h]

Each held-out test speaker of a kept cross-validation (crossval --keep-models: fold<k>_seed42/model.keras and
card.json, and the fold's predictions.csv) becomes one long recording: that speaker's clips in a seeded shuffled
order, joined with pauses of 0.3-2 s, 1 s before the first, over a floor of white noise 60 dB below the
clips' median peak (low noise, under the speech too), the truth known per clip (pipeline/joined_recording.py,
which the report's timeline joins its clips with too).
The recording goes through predict's own --segments path (pipeline.predict.Recording: read a block at a time,
WebRTC's detector, each segment prepared as a file is) and is scored by the fold's model, which never heard the
speaker, twice: normalised on the recording's own segments (`--speakers recording`, predict --segments' default)
and cold (`--speakers none`). Reported per corpus:

  - coverage: the share of true clips whose middle lies in a segment (goal >= 95 %);
  - boundary error: |segment start - clip start| and |segment end - clip end| of the segment covering a clip's
    middle (the clip's file bounds, its own edge silences included), median and mean;
  - segments per clip (1.0: one segment per clip; below: clips merged over short pauses);
  - clip UAR, a clip's label that of the segment covering its middle (uncovered: wrong), own normalisation and
    cold, beside the per-file transductive and cold UAR of the same models on the same files (predictions.csv);
  - seconds per minute of audio (reading, detection, features and the model: the own-normalisation pass).

Cold is served with today's rule, {image: clip, compare: gender} (train.normalisation_cold's default; the cards
were trained with `gender` for both), as bench/rescore_cold.py sets it (--cold to change); predictions.csv's cold
column is the cards' own rule (gender). --time-10min times `python -m pipeline predict --segments` on a
10-minute recording of one corpus's speakers end to end (start-up and model load included); --memory-2h streams a
2-hour recording (noise with a clip every minute, `--speakers none`) and reports its peak memory.
Writes bench/results/long_recordings/<corpus>/{clips.csv, summary.json}; the recordings are rebuilt in a
temporary folder (never the corpora's).

--part val does the same with each fold's VALIDATION speakers (val_predictions.csv's rows of that fold, one
recording per speaker) scored by the fold's step-1 model (models/fold<k>_seed42/first/, trained without them;
the kept runs used the refit), beside val_predictions.csv's per-file figures of that model; it writes
<out>/<corpus>/val/. Segment settings (--segments) are chosen on this part; the test part is read once after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.joined_recording import NOISE_DB, build_recording  # noqa: E402

CORPORA = {  # corpus: (kept cross-validation, where its predictions.csv's data/raw/<name>/ paths lie)
    "emodb": (Path("/work/exp-emodb/bench/results/crossval/fusion-g42"), Path("/work/shared/corpora/emodb")),
    "ravdess": (Path("/work/exp-ravdess/bench/results/crossval/fusion-g42"), Path("/work/shared/corpora/ravdess-dev")),
}

def uar(actual, predicted) -> float:
    actual, predicted = np.asarray(actual, dtype=object), np.asarray(predicted, dtype=object)
    return float(np.mean([np.mean(predicted[actual == c] == c) for c in sorted(set(actual))]))


def corpus_path(path: str, corpus: str, root: Path) -> Path:
    """data/raw/<corpus>/x/y.wav (predictions.csv) -> the corpus's own copy."""
    parts = Path(path).parts
    return root.joinpath(*parts[3:]) if parts[:2] == ("data", "raw") else Path(path)


def with_cold(card: dict, rule: dict) -> dict:
    for kind, spec in card["inputs"].items():
        if kind in rule:
            spec["normalisation"]["cold"] = rule[kind]
    return card


def label_clips(truth: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """Each clip: the segment covering its middle (its emotion, bounds), or none."""
    segs = [r for r in rows if r.get("emotion")]
    out = []
    for _, clip in truth.iterrows():
        middle = (clip["start"] + clip["end"]) / 2
        seg = next((s for s in segs if s["start"] <= middle <= s["end"]), None)
        out.append({"predicted": seg["emotion"] if seg else "(none)",
                    "seg_start": seg["start"] if seg else np.nan, "seg_end": seg["end"] if seg else np.nan})
    return pd.DataFrame(out, index=truth.index)


def score_recording(wav: Path, card: dict, model, cfgs: tuple) -> tuple[list, list, float, int]:
    """(rows normalised on the recording's own segments, cold rows, seconds for the own pass, segments)."""
    from pipeline import model_card
    from pipeline.predict import Recording, score

    t = time.perf_counter()
    prepared = list(Recording(wav, *cfgs))
    ok = [p for p in prepared if not p.error]
    acc = model_card.StatisticsAccumulator(card, source="recording")
    for p in ok:
        acc.add({k: v[None] for k, v in p.clip.items()})
    own = score(model, ok, card, lambda path: path, {str(wav): acc.statistics()}) if ok else []
    seconds = time.perf_counter() - t
    cold = score(model, ok, card) if ok else []
    return own, cold, seconds, len(prepared)


PARTS = {  # part: (the kept run's per-file rows, the fold's model under models/fold<k>_seed42/)
    "test": ("predictions.csv", ""),
    "val": ("val_predictions.csv", "first"),  # the step-1 model, which never heard the fold's validation speakers
}


def run_corpus(corpus: str, cold_rule: dict, tmp: Path, out: Path, only: list | None, segments: dict,
               part: str = "test") -> dict:
    from pipeline import model_card, runtime
    from pipeline.segments import SegmentConfig

    results, root = CORPORA[corpus]
    rows_csv, model_sub = PARTS[part]
    pred = pd.read_csv(results / rows_csv)
    pred = pred[(pred["system"] == "fusion") & (pred["seed"] == 42)]
    files = pred[pred["mode"] == "transductive"].assign(file=lambda d: [corpus_path(p, corpus, root)
                                                                        for p in d["path"]])
    rows, timing = [], []
    for fold in sorted(files["fold"].unique()):
        if only is not None and fold not in only:
            continue
        model_dir = results / "models" / f"fold{fold}_seed42" / model_sub
        card = with_cold(model_card.read(model_dir / "card.json"), cold_rule)
        acfg, fcfg = model_card.configs(card)
        scfg = SegmentConfig.from_params({"segments": {**SegmentConfig.from_card(card).to_card(), **segments}})
        cfgs = (acfg, fcfg, model_card.input_kinds(card), scfg)
        model = runtime.load(model_dir / "model.keras", cfgs[2])
        for speaker, clips in files[files["fold"] == fold].groupby("speaker"):
            wav = tmp / f"{corpus}_{speaker.replace(':', '_')}.wav"
            truth = build_recording(clips, wav, seed=int(fold) + 1)
            own, cold, seconds, n_segments = score_recording(wav, card, model, cfgs)
            minutes = truth["end"].max() / 60 + 1 / 60
            timing.append((seconds, minutes))
            got, got_cold = label_clips(truth, own), label_clips(truth, cold)
            rows.append(truth.assign(fold=fold, predicted_own=got["predicted"], predicted_cold=got_cold["predicted"],
                                     seg_start=got["seg_start"], seg_end=got["seg_end"], segments=n_segments,
                                     normalisation=own[0]["normalisation"] if own else ""))
            print(f"{corpus} {part} fold {fold} {speaker}: {len(truth)} clips, {n_segments} segments, "
                  f"{minutes:.1f} min, "
                  f"{seconds:.0f} s ({seconds / minutes:.1f} s per min); clip UAR own {uar(truth['actual'], got['predicted']):.3f}, "
                  f"cold {uar(truth['actual'], got_cold['predicted']):.3f}; {rows[-1]['normalisation'].iloc[0]}",
                  flush=True)
    clips = pd.concat(rows)
    out.mkdir(parents=True, exist_ok=True)
    clips.drop(columns=["file"]).to_csv(out / "clips.csv", index=False)
    covered = clips["seg_start"].notna()
    start_err = (clips["seg_start"] - clips["start"]).abs()[covered]
    end_err = (clips["seg_end"] - clips["end"]).abs()[covered]
    per_file = pred.merge(clips[["fold", "path"]].drop_duplicates(), on=["fold", "path"])  # the fold's own rows
    summary = {
        "corpus": corpus, "part": part, "recordings": int(clips.groupby(["fold", "speaker"]).ngroups),
        "clips": int(len(clips)),
        "minutes": round(sum(m for _, m in timing), 1),
        "coverage": round(float(covered.mean()), 4),
        "segments_per_clip": round(float(clips.groupby(["fold", "speaker"])["segments"].first().sum() / len(clips)), 3),
        "boundary_error_s": {"start_median": round(float(start_err.median()), 3),
                             "start_mean": round(float(start_err.mean()), 3),
                             "end_median": round(float(end_err.median()), 3), "end_mean": round(float(end_err.mean()), 3)},
        "clip_uar": {"own": round(uar(clips["actual"], clips["predicted_own"]), 4),
                     "cold": round(uar(clips["actual"], clips["predicted_cold"]), 4)},
        "per_file_uar": {m: round(uar(g["actual"], g["predicted"]), 4)
                         for m, g in per_file[per_file["mode"].isin(["transductive", "cold"])].groupby("mode")},
        "cold_rule": cold_rule, "segments": scfg.to_card(),
        "seconds_per_audio_minute": round(sum(s for s, _ in timing) / sum(m for _, m in timing), 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2), flush=True)
    return summary


PEAK = ("import resource, runpy, sys\n"
        "sys.argv = ['pipeline'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
        "finally:\n    print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")


def timed_cli(wav: Path, model: Path, extra: list[str]) -> tuple[float, float, str]:
    """(wall seconds, the child's own peak memory in MB, stdout) of `python -m pipeline predict --segments`."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK, "predict", "--segments", "--json", "--model", str(model),
                           str(wav), *extra], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"predict failed: {proc.stderr[-2000:]}")
    peak = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("peak_kb ")][-1] / 1024
    return seconds, peak, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", nargs="+", choices=sorted(CORPORA), default=sorted(CORPORA))
    ap.add_argument("--folds", type=int, nargs="*", help="only these folds")
    ap.add_argument("--cold", default="image:clip,compare:gender", help="cold rule per input, as rescore_cold's")
    ap.add_argument("--part", choices=sorted(PARTS), default="test",
                    help="whose recordings: the folds' test speakers (their models) or validation speakers "
                         "(the step-1 models, first/)")
    ap.add_argument("--segments", default="", help="segment settings over the card's: key=value,...")
    ap.add_argument("--time-10min", action="store_true", help="time predict --segments on a 10-minute recording")
    ap.add_argument("--memory-2h", action="store_true", help="peak memory of predict --segments on 2 hours")
    ap.add_argument("--out", type=Path, default=Path("bench/results/long_recordings"))
    args = ap.parse_args()
    from pipeline.backend import load_opensmile_first, quiet_tensorflow

    load_opensmile_first()
    quiet_tensorflow()
    cold_rule = dict(part.split(":") for part in args.cold.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        segments = {k: float(v) for k, v in (part.split("=") for part in args.segments.split(",") if part)}
        segments = {k: int(v) if k in ("vad_aggressiveness", "frame_ms") else v for k, v in segments.items()}
        summaries = [run_corpus(c, cold_rule, tmp, args.out / c / ("val" if args.part == "val" else ""), args.folds,
                                segments, args.part) for c in args.corpus]
        model = CORPORA[args.corpus[0]][0] / "models" / "fold0_seed42" / "model.keras"
        if args.time_10min:
            import soundfile as sf

            wavs = sorted(tmp.glob(f"{args.corpus[0]}_*.wav"))
            sr = sf.info(wavs[0]).samplerate
            joined = np.concatenate([sf.read(w, dtype="int16")[0] for w in wavs])[:600 * sr]
            ten = tmp / "ten_minutes.wav"
            sf.write(ten, joined, sr, subtype="PCM_16")
            seconds, peak, out = timed_cli(ten, model, [])
            print(f"10-minute recording ({args.corpus[0]} speakers joined): predict --segments {seconds:.1f} s "
                  f"({seconds / 10:.1f} s per minute, start-up and model load included), {len(out.splitlines())} "
                  f"segments, peak memory {peak:.0f} MB", flush=True)
            summaries.append({"ten_minutes_seconds": round(seconds, 1), "peak_mb": round(peak)})
        if args.memory_2h:
            import soundfile as sf

            from pipeline import audio

            wav = sorted(tmp.glob(f"{args.corpus[0]}_*.wav"))[0]
            clip, sr = audio.read(next(iter(sorted((CORPORA[args.corpus[0]][1]).rglob("*.*")))))
            clip = audio.mono(clip)
            long = tmp / "two_hours.wav"
            rng = np.random.default_rng(0)
            with sf.SoundFile(long, "w", sr, 1, subtype="PCM_16") as f:
                for _ in range(120):  # a minute at a time: the writer holds no more
                    minute = (10 ** (NOISE_DB / 20) * rng.standard_normal(60 * sr)).astype(np.float32)
                    minute[sr:sr + len(clip)] += clip[:59 * sr]
                    f.write(np.clip(minute, -1, 1))
            size = long.stat().st_size / 2 ** 20
            seconds, peak, out = timed_cli(long, model, ["--speakers", "none"])
            print(f"2-hour recording ({size:.0f} MB on disk, 120 segments expected): {len(out.splitlines())} rows in "
                  f"{seconds:.0f} s, peak memory of the process {peak:.0f} MB", flush=True)
            summaries.append({"two_hours_seconds": round(seconds), "two_hours_peak_mb": round(peak),
                              "two_hours_rows": len(out.splitlines())})
    name = "summary_val.json" if args.part == "val" else "summary.json"
    (args.out / name).write_text(json.dumps(summaries, indent=2) + "\n")


if __name__ == "__main__":
    main()
