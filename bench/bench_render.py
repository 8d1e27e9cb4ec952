"""Benchmark: standardise + render throughput, ours against the papers' way, on the same files in one run.

    .venv/bin/python bench/bench_render.py --files 200 --out bench/results/render.json

Synthesises speech-like 16-bit WAV files (harmonic tones with a moving pitch, syllable envelopes, noise, a
little silence at both ends) in a temp dir, in two sets timed in the same run:

  real   the real corpora's rates and lengths, a third each: RAVDESS-like 48 kHz ~3.7 s, TESS-like
         24.414 kHz ~2.0 s, CREMA-D-like 16 kHz ~2.5 s (the headline figure: resampling included);
  mixed  1-4 s at 16 / 44.1 / 48 kHz;

then times, per set and per corpus-like rate:

  (a) the papers' way, one process: librosa.load (resampled to params' audio.sample_rate, as ours is)
      + librosa.feature.melspectrogram + librosa.power_to_db + a matplotlib figure + specshow + savefig;
  (b) ours, one worker process: what the render stage computes for a clip it has not seen, with params.yaml's
      recipe: pipeline.audio.read + prepare (the speech) + fit (the window) + pipeline.features.outputs of the
      image and the kinds render.needed_kinds(params) names (the model's inputs, the crossval baseline's,
      features.extra), the functionals over the speech; PNG bytes written to a file like (a);
  (b') ours, the image alone (what (a) makes: like for like);
  (t) today's way, the render of main before "render by need" (2026-12-01): the image plus every feature set
      (MFCC, vector, utterance, ComParE, eGeMAPS), the openSMILE functionals over the padded or cut 3-s window;
  (c) (b) on a multiprocessing Pool of all cores;
  (r) reading alone (pipeline.audio.read), the part of (a) and (b) that is the disk and libsndfile's;
  (k) the cost of each output alone, per clip, in one worker: the image, each feature set over the window and
      ComParE / eGeMAPS over the speech too (what a render that lacks only that output in its cache pays);

and, as a yardstick for (c), the same pools on pure-CPU Python work: on a shared or throttled machine
even that does not scale to all cores, and the report says how far ours gets relative to it. The paths
take turns on slices of the corpus (--rounds), so background load hits them alike; ours makes --repeat
passes over each slice so its (short) timing windows are not dominated by noise.

Every worker pins BLAS to one thread (pipeline.features.pin_threads) and is warmed up (imports, caches,
first figure) before timing, so the figures are steady-state files/s per core. (a) and (b) run in the same
kind of single-threaded worker so the per-core comparison is fair. The render config is params.yaml's
`audio` / `features` sections (extras included when params ask for them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from pipeline.params import available_cpus  # noqa: E402

SAMPLE_RATES = (16000, 44100, 48000)  # the "mixed" set
# The "real" set: (sample rate, typical seconds) of each corpus's files, 16-bit mono WAV like theirs
CORPUS_LIKE = {"ravdess": (48000, 3.7), "tess": (24414, 2.0), "cremad": (16000, 2.5)}
SETS = ("real", "mixed")


# ------------------------------------------------------------------------------------------- synthesis

def synth_utterance(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """A speech-like signal: voiced syllables (harmonics of a moving f0, formant-ish tilt) + breath noise."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0_base = rng.uniform(90, 260)
    f0 = f0_base * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6))
                    + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros(n)
    formant = rng.uniform(500, 900)
    for k in range(1, 25):
        fk = f0_base * k
        if fk > 0.45 * sr:
            break
        amp = 1.0 / k * (1.0 + 2.0 * np.exp(-((fk - formant) / 300.0) ** 2))
        voiced += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    rate = rng.uniform(3, 6)  # syllables per second
    env = np.clip(np.sin(np.pi * rate * t + rng.uniform(0, np.pi)), 0, None) ** 0.7
    lead, tail = int(rng.uniform(0.05, 0.3) * sr), int(rng.uniform(0.05, 0.3) * sr)
    env[:lead] = 0.0
    env[n - tail:] = 0.0
    y = voiced * env + 0.02 * rng.standard_normal(n) * (0.3 + env)
    return (0.6 * y / np.max(np.abs(y))).astype(np.float32)


def make_corpus(folder: Path, n_files: int, seed: int = 0, kind: str = "real") -> list[tuple[str, str]]:
    """(path, group) of n_files WAVs; group is the corpus-like name (real) or the sample rate (mixed)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_files):
        if kind == "real":
            group = list(CORPUS_LIKE)[i % len(CORPUS_LIKE)]
            sr, typical = CORPUS_LIKE[group]
            seconds = typical * float(rng.uniform(0.85, 1.15))
        else:
            sr = int(SAMPLE_RATES[i % len(SAMPLE_RATES)])
            group, seconds = f"{sr / 1000:g} kHz", float(rng.uniform(1.0, 4.0))
        y = synth_utterance(rng, sr, seconds)
        path = folder / f"utt{i:05d}.wav"
        sf.write(str(path), y, sr, subtype="PCM_16")
        files.append((str(path), group))
    return files


# --------------------------------------------------------------------------------------------- workers

_W: dict = {}


def _init(method: str, params: dict, out_dir: str, warm_path: str) -> None:
    from pipeline import audio
    from pipeline.features import pin_threads

    pin_threads()
    _W["method"], _W["out"] = method, out_dir
    _W["sample_rate"] = audio.AudioConfig.from_params(params).sample_rate
    _W["read"] = audio.read
    if method == "papers":
        import matplotlib

        matplotlib.use("Agg")
        import librosa
        import librosa.display  # noqa: F401
        import matplotlib.pyplot as plt

        _W["librosa"], _W["plt"] = librosa, plt
    else:
        from pipeline import audio, features
        from pipeline.render import needed_kinds

        _W["audio"], _W["features"] = audio, features
        _W["acfg"] = audio.AudioConfig.from_params(params)
        _W["fcfg"] = dataclasses.replace(features.FeatureConfig.from_params(params), extra=needed_kinds(params))
        if method == "ours_image":  # the image only, like (a): no extra feature arrays
            _W["fcfg"] = dataclasses.replace(_W["fcfg"], extra=())
        if method == "today":  # every feature set, the functionals over the window (main before render by need)
            _W["fcfg"] = dataclasses.replace(_W["fcfg"], extra=features.EXTRA_KINDS, functionals_on="window")
    for _ in range(2):  # warm up: imports, filterbank/LUT caches, font cache, first figure
        _work(warm_path, write=False)
    _W.pop("kind_times", None)


def _papers(path: str, out: str | None) -> None:
    librosa, plt = _W["librosa"], _W["plt"]
    y, sr = librosa.load(path, sr=_W["sample_rate"])  # resampled like ours (soxr HQ, librosa's default)
    s = librosa.feature.melspectrogram(y=y, sr=sr)
    s_db = librosa.power_to_db(s, ref=np.max)
    fig = plt.figure(figsize=(1.28, 1.28), dpi=100)  # a 128 x 128 image, like ours
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_axis_off()
    librosa.display.specshow(s_db, sr=sr, ax=ax)
    plt.savefig(out if out else os.devnull, format="png", dpi=100, bbox_inches="tight", pad_inches=0)
    plt.close(fig)


def _ours(path: str, out: str | None) -> None:
    audio, features, acfg, fcfg = _W["audio"], _W["features"], _W["acfg"], _W["fcfg"]
    samples, sr = audio.read(path)
    speech = audio.prepare(samples, sr, acfg)
    window = audio.fit(speech, acfg.n_samples)
    rendered = features.outputs(window, acfg.sample_rate, fcfg, ("image",) + tuple(fcfg.extra), speech)
    if out:
        Path(out).write_bytes(rendered["image"])


KINDS = ("image", "mfcc", "vector", "utterance", "compare", "egemaps")


def _kinds(path: str) -> dict[str, float]:
    """Seconds of each output alone for one clip (after reading and standardising it once)."""
    audio, features, acfg = _W["audio"], _W["features"], _W["acfg"]
    samples, sr = audio.read(path)
    t0 = time.perf_counter()
    speech = audio.prepare(samples, sr, acfg)
    window = audio.fit(speech, acfg.n_samples)
    out = {"standardise": time.perf_counter() - t0}
    window_cfg = dataclasses.replace(_W["fcfg"], functionals_on="window")
    speech_cfg = dataclasses.replace(_W["fcfg"], functionals_on="speech")
    for kind in KINDS:
        t0 = time.perf_counter()
        features.outputs(window, acfg.sample_rate, window_cfg, (kind,), speech)
        out[kind if kind not in features.FUNCTIONAL_KINDS else f"{kind} (window)"] = time.perf_counter() - t0
    for kind in features.FUNCTIONAL_KINDS:
        t0 = time.perf_counter()
        features.outputs(window, acfg.sample_rate, speech_cfg, (kind,), speech)
        out[f"{kind} (speech)"] = time.perf_counter() - t0
    out["speech_seconds"] = len(speech) / acfg.sample_rate
    return out


def _work(path: str, write: bool = True) -> float:
    t0 = time.perf_counter()
    out = os.path.join(_W["out"], _W["method"] + "_" + Path(path).stem + ".png") if write else None
    if _W["method"] == "read":
        _W["read"](path)
    elif _W["method"] == "kinds":
        _W.setdefault("kind_times", []).append(dict(_kinds(path), path=path))
    else:
        (_papers if _W["method"] == "papers" else _ours)(path, out)
    return time.perf_counter() - t0


class Runner:
    """A warmed-up pool of `workers` processes running one method; run() times it on a batch of files."""

    def __init__(self, method: str, workers: int, params: dict, out_dir: str, warm_path: str):
        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        t0 = time.perf_counter()
        self.method, self.workers = method, workers
        self.pool = ctx.Pool(workers, initializer=_init, initargs=(method, params, out_dir, warm_path))
        self.pool.map(time.sleep, [0.0] * workers, chunksize=1)  # every worker is up and warmed
        self.startup = time.perf_counter() - t0
        self.seconds: dict[str, float] = {}
        self.per_file: dict[str, list[tuple[str, float]]] = {}  # set -> (group, seconds) per file
        self.spin_seconds, self.spin_tasks = 0.0, 0

    def run(self, files: list[tuple[str, str]], tag: str, repeat: int = 1) -> None:
        files = files * repeat
        t0 = time.perf_counter()
        chunk = max(1, min(8, len(files) // (4 * self.workers)))
        times = self.pool.map(_work, [path for path, _ in files], chunksize=chunk)
        self.seconds[tag] = self.seconds.get(tag, 0.0) + time.perf_counter() - t0
        self.per_file.setdefault(tag, []).extend(zip([group for _, group in files], times))

    def kind_times(self) -> list[dict]:
        """(k): every file's per-output seconds, from the one worker of a `kinds` runner."""
        return self.pool.apply(_kind_times)

    def spin(self, tasks_per_worker: int, n: int = 200_000) -> None:
        """Pure-CPU yardstick on the same pool: how many cores' worth the machine gives right now."""
        tasks = tasks_per_worker * self.workers
        t0 = time.perf_counter()
        self.pool.map(_spin, [n] * tasks, chunksize=1)
        self.spin_seconds += time.perf_counter() - t0
        self.spin_tasks += tasks

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def report(self, tag: str) -> dict:
        per_file, seconds = self.per_file[tag], self.seconds[tag]
        groups = sorted({g for g, _ in per_file})
        return {"method": self.method, "workers": self.workers, "files_processed": len(per_file),
                "seconds": round(seconds, 3), "files_per_s": round(len(per_file) / seconds, 2),
                "startup_s": round(self.startup, 2),
                "ms_per_file_median": round(1000 * float(np.median([t for _, t in per_file])), 2),
                "ms_per_file_median_by_group": {g: round(1000 * float(np.median([t for h, t in per_file if h == g])), 2)
                                                for g in groups}}


def _per_kind(times: list[dict], group_of: dict[str, str]) -> dict:
    """Median ms per clip of each output of (k), overall and per corpus-like group (speech_seconds: median s)."""
    out = {}
    groups = list(dict.fromkeys(group_of.values()))
    for key in (k for k in times[0] if k != "path"):
        scale = 1.0 if key == "speech_seconds" else 1000.0
        values = [(group_of[t["path"]], t[key] * scale) for t in times]
        out[key] = {"median": round(float(np.median([v for _, v in values])), 2),
                    "by_group": {g: round(float(np.median([v for h, v in values if h == g])), 2) for g in groups}}
    return out


def _kind_times() -> list[dict]:
    return _W.pop("kind_times", [])


def _spin(n: int) -> int:
    """Pure CPU work, no memory traffic, no BLAS: what a core can do when nothing else wants it."""
    total = 0
    for i in range(n):
        total += i * i
    return total


# ------------------------------------------------------------------------------------------------ main

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=200, help="synthetic files per set (default 200)")
    ap.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="file sets to time (default: both)")
    ap.add_argument("--out", default="bench/results/render.json", help="where to write the JSON results")
    ap.add_argument("--workers", type=int, default=0, help="pool size for (c); 0 = all cores")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"), help="params.yaml for audio/features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=10, help="slices of each set the paths take turns on")
    ap.add_argument("--repeat", type=int, default=5,
                    help="passes of our paths over each slice, so their timing windows are not tiny (default 5)")
    args = ap.parse_args(argv)
    if args.files < 1 or args.repeat < 1:
        ap.error("--files and --repeat must be >= 1")

    import librosa
    import yaml

    from pipeline.audio import AudioConfig
    from pipeline.features import FeatureConfig
    from pipeline.render import needed_kinds

    params = yaml.safe_load(Path(args.params).read_text()) or {}
    acfg = AudioConfig.from_params(params)
    fcfg = dataclasses.replace(FeatureConfig.from_params(params), extra=needed_kinds(params))  # what render makes
    cores = args.workers or available_cpus()

    with tempfile.TemporaryDirectory(prefix="bench_render_") as tmp:
        png_dir = Path(tmp) / "png"
        png_dir.mkdir()
        t0 = time.perf_counter()
        corpora = {tag: make_corpus(Path(tmp) / tag, args.files, args.seed, tag) for tag in args.sets}
        durations = {tag: float(sum(sf.info(p).duration for p, _ in files)) for tag, files in corpora.items()}
        print(f"synthesised {args.files} files per set ({', '.join(args.sets)}) in {time.perf_counter() - t0:.1f} s;"
              f" timing on {cores} core(s) ...", flush=True)
        warm = corpora[args.sets[0]][0][0]
        papers = Runner("papers", 1, params, str(png_dir), warm)
        ours1 = Runner("ours", 1, params, str(png_dir), warm)
        ours_n = Runner("ours", cores, params, str(png_dir), warm)
        image_only = Runner("ours_image", 1, params, str(png_dir), warm) if fcfg.extra else None
        today = Runner("today", 1, params, str(png_dir), warm)
        reader = Runner("read", 1, params, str(png_dir), warm)
        kinds = Runner("kinds", 1, params, str(png_dir), warm)
        order = (papers, ours1, ours_n, reader, today, kinds) + ((image_only,) if image_only else ())
        kind_times: dict[str, list[dict]] = {}
        for tag in args.sets:
            # the paths take turns on the same slices of the set, so a change in background load on a
            # shared machine hits all of them alike instead of skewing whichever happened to run at the time
            files = corpora[tag]
            rounds = max(1, min(args.rounds, len(files)))
            for r in range(rounds):
                batch = files[r::rounds]
                for runner in order[r % len(order):] + order[:r % len(order)]:
                    runner.run(batch, tag, 1 if runner in (papers, kinds) else args.repeat)
                ours1.spin(2)
                ours_n.spin(2)
            kind_times[tag] = kinds.kind_times()
        for runner in order:
            runner.close()
        free = (ours_n.spin_tasks / ours_n.spin_seconds) / (ours1.spin_tasks / ours1.spin_seconds)
        capacity = {"free_cores": round(free, 2), "efficiency": round(free / cores, 3)}

    result = {
        "files_per_set": args.files, "cores": cores, "repeat_ours": args.repeat,
        "corpus_like": {k: {"sample_rate": sr, "seconds": sec} for k, (sr, sec) in CORPUS_LIKE.items()},
        "mixed_sample_rates": list(SAMPLE_RATES),
        "config": {"audio": acfg.__dict__, "features": {**fcfg.__dict__, "extra": list(fcfg.extra)}},
        "sets": {},
        "cpu_capacity": capacity,
        "targets": {"speedup_per_core": 10.0, "scaling_efficiency": 0.8},
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "librosa": librosa.__version__, "platform": platform.platform()},
    }
    tables = []
    for tag in args.sets:
        a, b, c, rd = papers.report(tag), ours1.report(tag), ours_n.report(tag), reader.report(tag)
        b0 = image_only.report(tag) if image_only else None
        t = today.report(tag)
        speedup = b["files_per_s"] / a["files_per_s"]
        efficiency = c["files_per_s"] / (b["files_per_s"] * cores)
        per_kind = _per_kind(kind_times[tag], dict(corpora[tag]))
        result["sets"][tag] = {
            "audio_seconds_total": round(durations[tag], 1),
            "papers_1proc": a, "ours_1proc": b, "ours_pool": c, "read_1proc": rd, "ours_1proc_image_only": b0,
            "today_1proc": t, "ms_per_clip_by_output": per_kind,
            "speedup_per_core": round(speedup, 2),
            "speedup_per_core_image_only": round(b0["files_per_s"] / a["files_per_s"], 2) if b0 else None,
            "speedup_per_core_vs_today": round(b["files_per_s"] / t["files_per_s"], 2),
            "scaling_efficiency": round(efficiency, 3),
            "scaling_efficiency_vs_capacity": round(efficiency / max(capacity["efficiency"], 1e-9), 3),
        }
        r = result["sets"][tag]
        groups = list(a["ms_per_file_median_by_group"])

        def by_group(rep):
            return " / ".join(f"{rep['ms_per_file_median_by_group'][g]}" for g in groups)

        what = ("RAVDESS-like 48 kHz ~3.7 s, TESS-like 24.414 kHz ~2.0 s, CREMA-D-like 16 kHz ~2.5 s"
                if tag == "real" else "1-4 s at 16 / 44.1 / 48 kHz")
        tables.append("\n".join([
            f"set {tag!r}: {args.files} files ({what}), {r['audio_seconds_total']} s of audio; "
            f"image {fcfg.image_height}x{fcfg.image_width} {fcfg.channels}, extras {list(fcfg.extra) or 'none'}",
            f"| path | processes | files/s | ms/file (median) | ms/file by group ({' / '.join(groups)}) |",
            "|---|---|---|---|---|",
            f"| (a) papers: librosa.load(sr={acfg.sample_rate}) + melspectrogram + specshow + savefig | 1 | "
            f"{a['files_per_s']} | {a['ms_per_file_median']} | {by_group(a)} |",
            f"| (t) today's way (main before render by need): image + every feature set, functionals over the "
            f"3-s window | 1 | {t['files_per_s']} | {t['ms_per_file_median']} | {by_group(t)} |",
            f"| (b) ours: read + standardise + image and {' + '.join(fcfg.extra) or 'nothing else'}, functionals "
            f"over the speech | 1 | {b['files_per_s']} | {b['ms_per_file_median']} | {by_group(b)} |",
            *([f"| (b') ours, image only (what (a) makes) | 1 | {b0['files_per_s']} | "
               f"{b0['ms_per_file_median']} | {by_group(b0)} |"] if b0 else []),
            f"| (c) ours, process pool | {cores} | {c['files_per_s']} | {c['ms_per_file_median']} | {by_group(c)} |",
            f"| (r) reading alone: audio.read | 1 | {rd['files_per_s']} | {rd['ms_per_file_median']} | "
            f"{by_group(rd)} |",
            "",
            # like for like: (a) makes the image only; the feature columns are the models' inputs on top
            (f"speedup per core, image only (b')/(a): **{r['speedup_per_core_image_only']:.1f}x** (target >= 10x); "
             f"with the feature columns (b)/(a): {speedup:.1f}x; " if b0 else
             f"speedup per core (b)/(a): **{speedup:.1f}x** (target >= 10x); ")
            + f"scaling efficiency (c)/((b) x {cores}): **{100 * efficiency:.0f} %** (target >= 80 %; "
            f"{100 * r['scaling_efficiency_vs_capacity']:.0f} % of what the machine offered); "
            f"the recipe's render (b) against today's (t), per core: **{r['speedup_per_core_vs_today']:.2f}x** "
            f"(target >= 1.5x)",
            "",
            f"(k) each output alone, ms per clip (median; {' / '.join(groups)}), after reading and standardising:",
            "| output | ms per clip | by group |",
            "|---|---|---|",
            *[f"| {kind} | {v['median']} | {' / '.join(str(v['by_group'][g]) for g in groups)} |"
              for kind, v in per_kind.items()],
        ]))
    print()
    print(f"worker start-up: (a) {papers.startup:.1f} s, (b) {ours1.startup:.1f} s, (c) {ours_n.startup:.1f} s; "
          f"pure-CPU work on {cores} processes = {capacity['free_cores']} cores' worth; "
          f"{result['machine']['cpu']}, {os.cpu_count()} cores")
    print("\n\n".join(tables))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(out)
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
