"""The corpus on disk: every voice synthesised in its own fresh process (see the package doc), files written
atomically, stale files of an earlier generation cleared first."""
from __future__ import annotations

import logging
import multiprocessing as mp
import shutil
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.demo_corpus.prosody import EMOTIONS, SENTENCES, VOICES, available_voices, synthesise, utterance_id
from pipeline.errors import ParamsError

log = logging.getLogger("pipeline.demo_corpus")

SENTENCES_FILE = "sentences.txt"
VOICES_FILE = "voices.txt"
SKIPPED_FILE = "SKIPPED.txt"  # what the stage writes instead of a corpus when data.raw_dir holds corpora


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    import soundfile as sf

    from pipeline.io import atomic_path

    pcm = np.rint(np.clip(audio, -1.0, 1.0) * np.float32(32767)).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(tmp, pcm, sr, subtype="PCM_16", format="WAV")


_progress = None  # the queue a worker reports finished utterances on


def _init_worker(queue) -> None:
    global _progress
    _progress = queue


def _voice_task(args) -> tuple[list[tuple[str, str, float]], float]:
    """Every utterance of one voice, in a fresh process: write its files.
    Returns [(utt_id, emotion, seconds of audio)] and the CPU seconds it took."""
    voice, n_sentences, seed, out_dir = args
    cpu = time.process_time()
    folder = Path(out_dir) / voice.voice_id
    done = []
    for emotion in EMOTIONS:
        for s in range(1, n_sentences + 1):
            audio, sr = synthesise(voice, emotion, s, seed)
            utt = utterance_id(voice.voice_id, emotion, s)
            _write_wav(folder / f"{utt}.wav", audio, sr)
            done.append((utt, emotion, len(audio) / sr))
            if _progress is not None:
                _progress.put(1)
    return done, time.process_time() - cpu


def _clear(out_dir: Path) -> None:
    """Remove what an earlier generation left: its voice folders, its text files, temp files.
    Anything else in out_dir is left alone (out_dir could be mistyped as a folder that holds other things)."""
    if not out_dir.is_dir():
        return
    ours = {v.voice_id for v in VOICES}
    for child in sorted(out_dir.iterdir()):
        if child.is_dir() and not child.is_symlink() and child.name in ours:
            shutil.rmtree(child)
        elif child.is_file() and (child.name in (SENTENCES_FILE, VOICES_FILE, SKIPPED_FILE)
                                  or child.name.endswith(".tmp")):
            child.unlink()


def generate(out_dir: Path, voices: int, sentences: int, seed: int, workers: int = 1,
             progress: bool = True) -> dict:
    """Synthesise `voices` x `sentences` x 7 emotions into out_dir (stale files cleared first).

    Returns a summary: files written, per emotion, seconds of audio, elapsed seconds, utterances/s.
    """
    from concurrent.futures import FIRST_COMPLETED, wait
    from queue import Empty

    from tqdm import tqdm

    from pipeline.io import write_text

    out_dir = Path(out_dir)
    pool = available_voices()
    if isinstance(voices, bool) or not isinstance(voices, int) or not 2 <= voices <= len(pool):
        raise ParamsError("demo.voices", f"must be an integer 2..{len(pool)} (the voices available), got {voices!r}")
    if isinstance(sentences, bool) or not isinstance(sentences, int) or not 1 <= sentences <= len(SENTENCES):
        raise ParamsError("demo.sentences", f"must be an integer 1..{len(SENTENCES)}, got {sentences!r}")
    chosen = pool[:voices]
    workers = max(1, min(int(workers), voices))
    start = time.perf_counter()
    _clear(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / SENTENCES_FILE, "".join(f"{i:02d}\t{SENTENCES[i - 1]}\n" for i in range(1, sentences + 1)))
    write_text(out_dir / VOICES_FILE, "voice_id\tespeak\tgender\n"
               + "".join(f"{v.voice_id}\t{v.espeak}\t{v.gender}\n" for v in chosen))

    total = voices * sentences * len(EMOTIONS)
    results: list[tuple[str, str, float]] = []
    cpu = 0.0
    # One fresh process per voice, forked from a clean forkserver (see the module doc): eSpeak keeps state
    # between utterances, and this way no voice's audio depends on what ran before it or on `workers`.
    ctx = mp.get_context("forkserver")
    # Preload the slow imports, not this package: a child of `python -m pipeline.demo_corpus` re-runs it as
    # __mp_main__, and runpy warns when it is already imported.
    ctx.set_forkserver_preload(["numpy", "soundfile", "tqdm", "pipeline.io", "pipeline.params", "espeakng_loader"])
    queue = ctx.Queue()
    bar = tqdm(total=total, desc="demo corpus", unit="utt", disable=not progress, dynamic_ncols=True,
               mininterval=0.5)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, max_tasks_per_child=1,
                                 initializer=_init_worker, initargs=(queue,)) as ex:
            pending = {ex.submit(_voice_task, (v, sentences, seed, str(out_dir))) for v in chosen}
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done, seconds = fut.result()
                    results.extend(done)
                    cpu += seconds
                try:
                    while True:
                        bar.update(queue.get_nowait())
                except Empty:
                    pass
        bar.update(total - bar.n)
    finally:
        bar.close()
        queue.close()
    elapsed = time.perf_counter() - start

    per_emotion = Counter(e for _, e, _ in results)
    seconds = sum(d for _, _, d in results)
    summary = {
        "out_dir": str(out_dir),
        "files": len(results),
        "voices": [v.voice_id for v in chosen],
        "sentences": sentences,
        "per_emotion": {e: per_emotion[e] for e in EMOTIONS},
        "audio_seconds": round(seconds, 1),
        "mean_duration": round(seconds / max(1, len(results)), 2),
        "elapsed_seconds": round(elapsed, 2),
        "utterances_per_second": round(len(results) / elapsed, 1),
        "utterances_per_cpu_second": round(len(results) / cpu, 1) if cpu > 0 else None,
        "workers": workers,
    }
    log.info("wrote %d files to %s: %d voices x %d sentences x %d emotions, %.0f s of audio (%.2f s each)",
             len(results), out_dir, voices, sentences, len(EMOTIONS), seconds, summary["mean_duration"])
    log.info("per emotion: %s", ", ".join(f"{e} {per_emotion[e]}" for e in EMOTIONS))
    log.info("%.1f s with %d worker(s): %.0f utterances/s (%.0f per CPU-second in the workers)", elapsed, workers,
             summary["utterances_per_second"], summary["utterances_per_cpu_second"] or 0)
    return summary
