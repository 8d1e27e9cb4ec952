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
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import multiprocessing as mp
import shutil
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline import TARGET_LABELS
from pipeline.errors import ParamsError, UserError

log = logging.getLogger("pipeline.demo_corpus")

EMOTIONS = TARGET_LABELS  # angry, happy, sad, neutral, fearful, disgust, surprise
SENTENCES_FILE = "sentences.txt"
VOICES_FILE = "voices.txt"
SKIPPED_FILE = "SKIPPED.txt"  # what the stage writes instead of a corpus when data.raw_dir holds corpora


@dataclass(frozen=True)
class Voice:
    voice_id: str  # folder / file-name id, also the speaker id ("demo:<voice_id>")
    espeak: str  # eSpeak voice name: language + "+" + variant
    gender: str
    pitch: int  # eSpeak pitch parameter 0..99 (50 = the variant's own)
    rate: int  # words per minute
    range: int = 50  # eSpeak pitch range 0..100: how lively this speaker's neutral voice is


# Ordered so that any prefix is balanced between female and male voices. The ranges tame the variants'
# own liveliness (en+f1 flutters a lot, en-us+m2 is flat) so that emotions, not speakers, set the melody.
VOICES: tuple[Voice, ...] = (
    Voice("m1", "en+m1", "male", 46, 170, 50),
    Voice("f2", "en+f2", "female", 52, 165, 46),
    Voice("usm2", "en-us+m2", "male", 50, 176, 60),
    Voice("f1", "en+f1", "female", 47, 172, 40),
    Voice("m3", "en+m3", "male", 55, 166, 50),
    Voice("usf4", "en-us+f4", "female", 50, 178, 50),
    Voice("m6", "en+m6", "male", 43, 174, 52),
    Voice("usf3", "en-us+f3", "female", 55, 168, 48),
    Voice("usm4", "en-us+m4", "male", 52, 162, 50),
    Voice("f5", "en+f5", "female", 45, 170, 50),
    Voice("m7", "en+m7", "male", 48, 180, 50),
    Voice("usf1", "en-us+f1", "female", 53, 164, 42),
    Voice("m8", "en+m8", "male", 56, 168, 52),
    Voice("f4", "en+f4", "female", 49, 175, 50),
    Voice("usm6", "en-us+m6", "male", 47, 171, 52),
    Voice("usf2", "en-us+f2", "female", 51, 169, 46),
)

SENTENCES: tuple[str, ...] = (
    "The library closes at nine tonight.",
    "Please put the boxes by the door.",
    "The train leaves from platform four.",
    "We painted the kitchen last weekend.",
    "There is a meeting on Thursday morning.",
    "The keys are on the kitchen table.",
    "She bought a new lamp for the desk.",
    "The bus was ten minutes late today.",
    "He moved the chairs into the hall.",
    "The package arrived this afternoon.",
    "Our neighbours have a small garden.",
    "The report is due next Monday.",
    "I left my umbrella in the car.",
    "The shop sells bread and fresh milk.",
    "They will call you after lunch.",
    "The window in the office is open.",
    "My brother works at the harbour.",
    "The river runs behind the old mill.",
    "We need two more cups of flour.",
    "The phone rang during the film.",
    "The printer is out of paper again.",
    "Dinner will be ready at seven.",
    "The road is closed for repairs.",
    "She wrote the address on a card.",
    "The lights turn off at midnight.",
    "Your coat is hanging in the hall.",
    "The museum opens on Sunday.",
    "He parked the van near the gate.",
    "The tickets are in the blue envelope.",
    "We walked to the station together.",
)


@dataclass(frozen=True)
class Profile:
    """How one emotion is acted, relative to the voice's own settings."""

    rate: float  # x the voice's words per minute
    pitch: int  # + eSpeak pitch units (0..99; about +1.4 % per unit)
    range: int  # eSpeak pitch range 0..100 (50 = normal, 0 = monotone)
    volume: float  # x eSpeak volume 100
    wordgap: int  # extra pause between words, 10 ms units
    contour: str  # per-word pitch/rate pattern written as SSML (see _ssml)
    effects: tuple[tuple[str, float], ...] = ()  # signal-level cues (see _apply_effects)


PROFILES: dict[str, Profile] = {
    # loud, fast, wide hammering accents; harsh voice: pre-emphasis + saturation
    "angry": Profile(1.12, 6, 80, 1.6, 0, "hammer", (("harsh", 1.0),)),
    # high, bouncy (alternating up-steps), a little fast; smiling: formants raised, brighter
    "happy": Profile(1.10, 16, 95, 1.2, 0, "bounce", (("lilt", 1.0), ("smile", 1.0), ("bright", 1.0))),
    # slow, low, monotone, quiet; breathy and dark
    "sad": Profile(0.82, -12, 12, 0.6, 1, "sink", (("breathy", 1.0),)),
    # the voice as it is
    "neutral": Profile(0.97, 0, 42, 1.0, 0, "plain", ()),
    # fast, high, trembling (6-8 Hz vibrato + amplitude tremor), slightly breathy
    "fearful": Profile(1.22, 20, 45, 0.9, 0, "plain", (("tremor", 1.0), ("breathy", 0.35))),
    # slow, low, drawn-out first word falling away; creaky and muffled
    "disgust": Profile(0.95, -10, 70, 0.9, 2, "drawl", (("creak", 1.0),)),
    # a gasp, then a steep rise to a high end
    "surprise": Profile(1.0, 10, 95, 1.3, 1, "rise", (("gasp", 1.0),)),
}


# --------------------------------------------------------------------------------------------------- eSpeak NG

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
ESPEAK_SSML = 0x10
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE, ESPEAK_WORDGAP = 1, 2, 3, 4, 7

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def espeak_data_path() -> Path:
    try:
        import espeakng_loader
    except ImportError:  # pragma: no cover - the wheel is a dependency
        raise UserError("the demo corpus needs the `espeakng-loader` package (pip install espeakng-loader)") from None
    return Path(espeakng_loader.get_data_path())


def available_voices() -> tuple[Voice, ...]:
    """The VOICES whose language and variant exist in the wheel's eSpeak data."""
    data = espeak_data_path()
    langs = {"en": data / "lang" / "gmw" / "en", "en-us": data / "lang" / "gmw" / "en-US"}
    out = []
    for v in VOICES:
        lang, variant = v.espeak.split("+")
        if langs[lang].is_file() and (data / "voices" / "!v" / variant).is_file():
            out.append(v)
    return tuple(out)


class Espeak:
    """eSpeak NG in synchronous mode: text in, int16 samples out. One per process (the library is global)."""

    def __init__(self):
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        self._seed_fn = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._seed_fn is not None:
            self._seed_fn.argtypes = [ctypes.c_long]
        self._libc = ctypes.CDLL(None)
        self._libc.srand.argtypes = [ctypes.c_uint]
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(espeak_data_path()).encode(),
                                     ESPEAK_INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise UserError(f"eSpeak NG failed to initialise (data in {espeak_data_path()})")
        self.lib = lib
        self.sample_rate = rate
        self._chunks: list[bytes] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self._voice = None

    def _collect(self, wav, n, events):
        if n > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    def synth(self, text: str, voice: str, rate: int, pitch: int, range_: int, volume: int, wordgap: int,
              seed: int, ssml: bool = True) -> np.ndarray:
        if voice != self._voice:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise UserError(f"eSpeak NG has no voice {voice!r}")
            self._voice = voice
        for param, value in ((ESPEAK_RATE, rate), (ESPEAK_VOLUME, volume), (ESPEAK_PITCH, pitch),
                             (ESPEAK_RANGE, range_), (ESPEAK_WORDGAP, wordgap)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        # breath noise inside eSpeak uses rand(); seed both generators per utterance
        if self._seed_fn is not None:
            self._seed_fn(seed)
        self._libc.srand(seed)
        self._chunks.clear()
        data = text.encode("utf-8") + b"\0"
        flags = ESPEAK_CHARS_UTF8 | (ESPEAK_SSML if ssml else 0)
        err = self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, flags, None, None)
        if err != 0:
            raise UserError(f"eSpeak NG synthesis failed (error {err}) for {text!r}")
        return np.frombuffer(b"".join(self._chunks), dtype=np.int16)


@lru_cache(maxsize=1)
def _engine() -> Espeak:
    return Espeak()


# --------------------------------------------------------------------------------------------------- one utterance

def utterance_id(voice_id: str, emotion: str, sentence: int) -> str:
    return f"{voice_id}_{emotion}_{sentence:02d}"


def utterance_rng(seed: int, utt_id: str) -> np.random.Generator:
    """Per-utterance generator: stable across runs and processes (crc32, not Python's salted hash())."""
    return np.random.default_rng([int(seed), zlib.crc32(utt_id.encode("utf-8"))])


def _ssml(sentence: str, contour: str, k: float, rng: np.random.Generator) -> str:
    """The sentence as SSML with the emotion's per-word pitch / rate pattern (k scales its extent)."""
    words = sentence.split()
    n = len(words)
    parts = []

    def pc(value: float) -> str:  # a signed SSML percentage
        v = int(round(value * k + rng.uniform(-4, 4)))
        return f"+{v}%" if v >= 0 else f"{v}%"

    for i, w in enumerate(words):
        pos = i / max(n - 1, 1)
        if contour == "rise":  # surprise: a steep rise, the last word highest and drawn out
            slow = ' rate="80%"' if i == n - 1 else ""
            parts.append(f'<prosody pitch="{pc(10 + 110 * pos ** 1.5)}"{slow}>{w}</prosody>')
        elif contour == "bounce":  # happy: alternating up-steps, lively
            parts.append(f'<prosody pitch="{pc(70 if i % 2 == 0 else 0)}" range="{150 if i % 2 == 0 else 100}%">'
                         f'{w}</prosody>')
        elif contour == "hammer":  # angry: strong accents on the content words, falling
            if len(w.strip(".,?!")) > 3:
                parts.append(f'<emphasis level="strong"><prosody pitch="{pc(25 - 20 * pos)}">{w}</prosody>'
                             '</emphasis>')
            else:
                parts.append(w)
        elif contour == "drawl":  # disgust: the first word drawn out, high, then falling away
            if i == 0 or (i == 1 and len(words[0]) <= 3):
                parts.append(f'<prosody rate="65%" pitch="{pc(25)}">{w}</prosody>')
            else:
                parts.append(f'<prosody pitch="{pc(-5 - 25 * pos)}">{w}</prosody>')
        elif contour == "sink":  # sad: sinking and slowing towards the end
            parts.append(f'<prosody pitch="{pc(-15 * pos)}" rate="{int(round(100 - 10 * pos))}%">{w}</prosody>')
        else:
            parts.append(w)
    text = " ".join(parts)
    if contour == "rise":
        text = text[::-1].replace(".", "?", 1)[::-1]  # the question tune on the last word
    return f"<speak>{text}</speak>"


# Signal-level cues. Everything is float32 and slice arithmetic: numpy's float64 transcendental functions,
# np.interp, np.convolve and FFTs cost milliseconds per utterance, and importing scipy.signal costs seconds per
# worker. Noise comes from fixed tables read at a per-utterance random offset.

_NOISE_LEN = 1 << 18  # about 12 s at 22050 Hz


@lru_cache(maxsize=1)
def _noise_tables() -> tuple[np.ndarray, np.ndarray]:
    """(white, breath): unit-RMS Gaussian noise, and the same through (1 + z^-1)^2 (1 - z^-1), an
    aspiration-like band with a broad peak near sr / 6. Fixed seed: identical in every process."""
    w = np.random.default_rng(20240607).standard_normal(_NOISE_LEN + 3).astype(np.float32)
    b = w[3:] + w[2:-1] - w[1:-2] - w[:-3]
    return w[3:], b / np.sqrt(np.mean(b * b))


def _noise(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    table = _noise_tables()[kind]
    if n > len(table):
        table = np.tile(table, -(-n // len(table)))
    start = int(rng.integers(0, len(table) - n + 1))
    return table[start:start + n]


def _box(x: np.ndarray, w: int) -> np.ndarray:
    """Moving average over w samples: a cheap low-pass (first null at sr / w)."""
    y = x.copy()
    for i in range(1, w):
        y[i:] += x[:-i]
    return y * np.float32(1.0 / w)


def _envelope(x: np.ndarray, block: int = 256) -> np.ndarray:
    """Amplitude envelope: RMS per block of 256 samples (about 12 ms), held over the block."""
    n = len(x)
    m = -(-n // block)
    padded = np.zeros(m * block, np.float32)
    padded[:n] = x
    rms = np.sqrt(np.mean(padded.reshape(m, block) ** 2, axis=1))
    return np.repeat(rms.astype(np.float32), block)[:n]


def _sine(n: int, sr: int, hz: float, phase: float) -> np.ndarray:
    """sin(2 pi hz t + phase) in float32 (exact enough for the few hundred radians an utterance spans)."""
    return np.sin(np.arange(n, dtype=np.float32) * np.float32(2 * np.pi * hz / sr) + np.float32(phase))


def _read_at(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x at fractional sample positions `pos`, linearly interpolated."""
    n = len(x)
    pos = np.clip(pos, 0, n - 1)
    i0 = np.minimum(pos.astype(np.int32), n - 2)
    frac = pos - i0
    return x.take(i0) * (1 - frac) + x.take(i0 + 1) * frac


def _vibrato(x: np.ndarray, sr: int, hz: float, depth: float, phase: float) -> np.ndarray:
    """Pitch (and formants) swinging by +-depth (relative) at `hz`: a sinusoidal time warp."""
    shift = _sine(len(x), sr, hz, phase) * np.float32(depth / (2 * np.pi * hz) * sr)
    return _read_at(x, np.arange(len(x), dtype=np.float32) + shift)


def _apply_effects(x: np.ndarray, sr: int, effects, rng: np.random.Generator) -> np.ndarray:
    """Signal-level cues on float32 audio whose peak is 1."""
    for name, amount in effects:
        k = amount * rng.uniform(0.85, 1.15)
        n = len(x)
        if name == "harsh":  # strained, pressed voice: tilt up, then soft-clip hard
            y = 2.0 * x
            y[1:] -= 1.3 * x[:-1]
            drive = 4.0 * k
            x = np.tanh(y * np.float32(drive / (np.max(np.abs(y)) + 1e-9))) * np.float32(1 / np.tanh(drive))
        elif name == "lilt":  # sing-song: a slow 2.5-3.5 Hz pitch undulation (time warp), no tremor in loudness
            f = rng.uniform(2.5, 3.5)
            depth = 0.07 * k
            x = _vibrato(x, sr, f, depth, rng.uniform(0, 2 * np.pi))
        elif name == "smile":  # spread lips shorten the vocal tract: every frequency up about 9 % (resampled)
            r = 1.0 + 0.09 * k
            x = _read_at(x, np.arange(int((n - 1) / r), dtype=np.float32) * np.float32(r))
        elif name == "bright":  # smiling: a high-frequency lift
            y = np.float32(1.0 + 0.8 * k) * x
            y[1:] -= np.float32(0.6 * k) * x[:-1]
            x = y
        elif name == "breathy":  # aspiration noise following the speech envelope, darker voice
            mix = np.float32(min(1.0, 0.7 * k))
            noise = _noise(1, n, rng) * _envelope(x) * np.float32(0.9 * k)
            x = (1 - mix) * x + mix * _box(x, 4) + noise
        elif name == "tremor":  # 6-8 Hz vibrato (time warp) plus amplitude tremor
            f = rng.uniform(6.0, 8.0)
            depth = 0.045 * k  # relative pitch deviation
            x = _vibrato(x, sr, f, depth, rng.uniform(0, 2 * np.pi))
            am = _sine(n, sr, f * rng.uniform(0.9, 1.1), rng.uniform(0, 2 * np.pi))
            x = x * (np.float32(1 - 0.225 * k) - np.float32(0.225 * k) * am)
        elif name == "creak":  # vocal fry: irregular low-rate pulsing, muffled
            f0 = rng.uniform(35.0, 50.0)
            # phase in cycles: f0 t plus two slow wobbles (the pulse rate drifts by about +-25 %)
            cycles = np.arange(n, dtype=np.float32) * np.float32(f0 / sr)
            for _ in range(2):
                g = rng.uniform(2.0, 5.0)
                cycles += np.float32(0.125 * f0 / (2 * np.pi * g)) * _sine(n, sr, g, rng.uniform(0, 2 * np.pi))
            pulse = np.float32(0.5) + np.float32(0.5) * np.cos(np.float32(2 * np.pi) * cycles)
            d = np.float32(0.75 * min(k, 1.2))
            x = _box(x * ((1 - d) + d * pulse * pulse * pulse), 5)
        elif name == "gasp":  # a short inhaled "h" before the sentence
            g = int(sr * rng.uniform(0.16, 0.22))
            pause = np.zeros(int(sr * rng.uniform(0.06, 0.10)), np.float32)
            shape = (np.sin(np.linspace(0, np.pi, g)) ** 2 * np.linspace(0.6, 1.0, g) * 0.22 * k).astype(np.float32)
            x = np.concatenate([_noise(1, g, rng) * shape, pause, x])
        else:
            raise ValueError(f"unknown effect {name!r}")
    return x.astype(np.float32, copy=False)


def _trim(x: np.ndarray, sr: int, margin: float = 0.08, threshold: float = 0.01) -> np.ndarray:
    """Cut eSpeak's leading / trailing silence down to `margin` seconds."""
    loud = np.flatnonzero(np.abs(x) > threshold * (np.max(np.abs(x)) + 1e-9))
    if not len(loud):
        return x
    pad = int(margin * sr)
    return x[max(0, loud[0] - pad): loud[-1] + pad + 1]


def synthesise(voice: Voice, emotion: str, sentence: int, seed: int) -> tuple[np.ndarray, int]:
    """One utterance as float32 in [-1, 1] and its sample rate (sentence is 1-based)."""
    eng = _engine()
    rng = utterance_rng(seed, utterance_id(voice.voice_id, emotion, sentence))
    p = PROFILES[emotion]
    k = rng.uniform(0.75, 1.1) if emotion != "neutral" else 1.0  # how strongly this take is acted
    rate = int(round(voice.rate * (1 + (p.rate - 1) * k) * rng.uniform(0.95, 1.05)))
    pitch = int(np.clip(round(voice.pitch + p.pitch * k + rng.uniform(-3, 3)), 0, 99))
    range_ = int(np.clip(round(voice.range + (p.range - 50) * k + rng.uniform(-5, 5)), 0, 100))
    volume = int(round(100 * (1 + (p.volume - 1) * k) * rng.uniform(0.95, 1.05)))
    text = _ssml(SENTENCES[sentence - 1], p.contour, k, rng)
    raw = eng.synth(text, voice.espeak, rate, pitch, range_, volume, p.wordgap,
                    seed=int(rng.integers(1, 2 ** 31 - 1)))
    x = _trim(raw.astype(np.float32), eng.sample_rate)
    effects = tuple((name, amount * k) for name, amount in p.effects)
    x = _apply_effects(x / (np.max(np.abs(x)) + 1e-9), eng.sample_rate, effects, rng)
    # a faint recording-noise floor, the same for every emotion; louder emotions are written louder
    x = x + np.float32(10 ** (-60 / 20)) * _noise(0, len(x), rng)
    x = x * np.float32(0.9 * min(1.0, volume / 100) / (np.max(np.abs(x)) + 1e-9))
    return x, eng.sample_rate


# --------------------------------------------------------------------------------------------------- the corpus

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
    # Preload the slow imports, not this module: a child of `python -m pipeline.demo_corpus` re-runs it as
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


def read_params(params: dict) -> dict:
    """params.yaml `demo` -> generate() keyword arguments; a bad value raises ParamsError naming its key."""
    from pipeline.params import number, section
    from pipeline.params import workers as workers_param

    sec = section(params, "demo")
    out_dir = sec.get("out_dir", "data/demo")
    if not isinstance(out_dir, str) or not out_dir.strip():
        raise ParamsError("demo.out_dir", f"must be a folder path, got {out_dir!r}")
    return {
        "out_dir": Path(out_dir),
        # the voices of this eSpeak data are counted by generate(): checking params needs no synthesiser
        "voices": number(sec, "voices", "demo", default=8, lo=2, hi=len(VOICES), integer=True),
        "sentences": number(sec, "sentences", "demo", default=24, lo=1, hi=len(SENTENCES), integer=True),
        "seed": number(sec, "seed", "demo", default=7, lo=0, hi=2 ** 32 - 1, integer=True),
        "workers": workers_param(sec, "demo"),  # optional; 0 (default) = one per core
    }


def skip_reason(params: dict) -> str | None:
    """Why ingest will not read the demo corpus (real corpora are there), or None when it will."""
    from pipeline.raw_dir import raw_dir_from_params, scan

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


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
