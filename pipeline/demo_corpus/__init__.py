"""The built-in demo corpus: a small acted-emotion corpus synthesised with eSpeak NG.

Real corpora cannot be shipped, so `dvc repro` on a fresh clone runs on this one. eSpeak NG comes from the
`espeakng-loader` wheel (library + data, no system package) and is driven through ctypes.

    speakers   eSpeak voice variants (en+m1, en+f2, en-us+m2, ...), each with its own base pitch and rate
    sentences  short neutral English sentences (SENTENCES below)
    emotions   one prosody profile per target emotion (PROFILES below): rate, pitch, pitch range, volume and
               word gaps relative to the voice, a per-word pitch contour written as SSML, and signal-level cues
               applied with numpy after synthesis (harshness, tremor, breathiness, creak, a gasp ...)

Layout: <out_dir>/<voice_id>/<voice_id>_<emotion>_<sentence:02d>.wav (16-bit mono, 22050 Hz) plus
<out_dir>/sentences.txt (id<TAB>text) and <out_dir>/voices.txt (voice_id<TAB>espeak<TAB>gender).
pipeline/corpora/demo.py reads it.

Deterministic: each utterance's jitter comes from a numpy Generator seeded with (seed, crc32(utterance id)).
eSpeak keeps state from one utterance to the next (pitch-flutter phase, gain control, noise filters), so each
voice is synthesised, in a fixed order, in a fresh process forked from a clean forkserver: the bytes do not
depend on the number of workers or on what ran before in the calling process.

    python -m pipeline.demo_corpus          # reads params.yaml `demo`

Modules: espeak (the eSpeak NG binding), prosody (voices, sentences, emotion profiles, one utterance),
effects (the signal-level cues), pool (the corpus on disk, one process per voice); here: the stage.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.demo_corpus.espeak import Espeak, espeak_data_path
from pipeline.demo_corpus.pool import SENTENCES_FILE, SKIPPED_FILE, VOICES_FILE, _clear, generate
from pipeline.demo_corpus.prosody import (EMOTIONS, PROFILES, SENTENCES, VOICES, Profile, Voice, available_voices,
                                          synthesise, utterance_id, utterance_rng)
from pipeline.errors import ParamsError

__all__ = ["EMOTIONS", "PROFILES", "SENTENCES", "SENTENCES_FILE", "SKIPPED_FILE", "VOICES", "VOICES_FILE", "Espeak",
           "Profile", "Voice", "available_voices", "espeak_data_path", "generate", "main", "read_params", "skip",
           "skip_reason", "synthesise", "utterance_id", "utterance_rng"]

log = logging.getLogger("pipeline.demo_corpus")


def read_params(params: dict) -> dict:
    """params.yaml `demo` -> generate() keyword arguments; a bad value raises ParamsError naming its key."""
    from pipeline.params import number, section
    from pipeline.paths import DEMO_DIR
    from pipeline.params import workers as workers_param

    sec = section(params, "demo", keys=("out_dir", "voices", "sentences", "seed", "workers"))
    out_dir = sec.get("out_dir", str(DEMO_DIR))
    if not isinstance(out_dir, str) or not out_dir.strip():
        raise ParamsError("demo.out_dir", f"must be a folder path, got {out_dir!r}")
    return {
        "out_dir": Path(out_dir),
        # the voices of this eSpeak data are counted by generate(): checking params needs no synthesiser
        "voices": number(sec, "voices", "demo", default=8, lo=2, hi=len(VOICES), integer=True),
        "sentences": number(sec, "sentences", "demo", default=4, lo=1, hi=len(SENTENCES), integer=True),
        "seed": number(sec, "seed", "demo", default=7, lo=0, hi=2 ** 32 - 1, integer=True),
        "workers": workers_param(sec, "demo"),  # optional; 0 (default) = one per CPU this process may use
    }


def skip_reason(params: dict) -> str | None:
    """Why ingest will not read the demo corpus (real corpora are there), or None when it will."""
    from pipeline.files import raw_dir_from_params, scan

    corpora = (params.get("data") or {}).get("corpora") or []
    corpora = [corpora] if isinstance(corpora, str) else list(corpora)
    if "demo" in corpora:
        return None
    if corpora:
        return f"data.corpora names {', '.join(map(str, corpora))}"
    raw = scan(raw_dir_from_params(params))
    if raw.holds_nothing:
        return None
    held = raw.folders + raw.broken_links + raw.audio_files + raw.archives
    return f"{raw.path} holds {', '.join(p.name for p in held)}"


def skip(out_dir: Path, reason: str) -> None:
    """An empty demo folder with a note: the stage's output exists, no synthesis work is done."""
    from pipeline.io import write_text

    _clear(out_dir)
    write_text(out_dir / SKIPPED_FILE, f"The demo corpus was not synthesised: {reason}.\n"
                                       "The demo stage makes it only when data.raw_dir holds no corpus.\n")
    log.info("skipped: %s, so ingest reads those and the demo corpus is not needed", reason)


def main(argv=None) -> None:
    from pipeline.params import load

    parser = argparse.ArgumentParser(prog="python -m pipeline demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true",
                        help="synthesise even when data.raw_dir holds corpora (by default the stage then skips)")
    args = parser.parse_args(argv)
    params = load()
    kwargs = read_params(params)
    reason = None if args.force else skip_reason(params)
    if reason:
        skip(kwargs["out_dir"], reason)
    else:
        generate(**kwargs)
