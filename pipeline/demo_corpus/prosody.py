"""The voices (speakers), sentences and per-emotion prosody profiles, and one utterance synthesised from them:
rate, pitch, pitch range, volume and word gaps relative to the voice, a per-word pitch contour as SSML, then
the signal-level cues of effects.py. Each utterance's jitter comes from its own seeded generator."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from pipeline import TARGET_LABELS
from pipeline.demo_corpus.effects import _apply_effects, _noise, _trim
from pipeline.demo_corpus.espeak import _engine, espeak_data_path

EMOTIONS = TARGET_LABELS  # angry, happy, sad, neutral, fearful, disgust, surprise


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
