"""eSpeak NG through ctypes: the library and its data come from the `espeakng-loader` wheel (no system
package). Synchronous mode: text (SSML) in, int16 samples out; one engine per process (the library is global)."""
from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

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
