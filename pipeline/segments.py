"""Speech segments of a long recording: a voice activity detector (WebRTC's, `webrtcvad-wheels`) run over the
recording as it is read, a block at a time, so a 2-hour file never sits in memory whole.

    for segment in Segmenter(cfg).segments(blocks, sr):   # blocks: mono float32 arrays at sample rate sr
        segment.start, segment.end, segment.samples        # seconds of the recording; its audio at sr

The detector decides speech or not per frame (cfg.frame_ms) of the recording resampled to 16 kHz (its rate);
pauses up to cfg.max_gap_s inside speech are bridged, stretches of speech shorter than cfg.min_speech_s dropped
(a cough, a click), each segment widened by cfg.pad_s on both sides (the detector clips the soft ends of words),
and a segment of cfg.max_segment_s is closed there and the speech goes on in the next (the audio held at a time
stays bounded however long someone talks). A segment is handed on as soon as it closes. Its audio is the
recording's own, at its own rate and level: predict prepares it as it prepares a file (pipeline/audio.py), so
the model meets a segment as training met a clip.

The thresholds are params.yaml's `segments` section, written into the model card by train and final, so predict
and the exported bundle use the card's. Keras-free; webrtcvad is imported when a recording is segmented.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.params import number, section

VAD_RATE = 16000  # the detector's rate (it takes 8, 16, 32 or 48 kHz; 16 kHz is the models' own)


@dataclass(frozen=True)
class SegmentConfig:
    vad_aggressiveness: int = 2  # webrtcvad's mode: 0 (keeps most as speech) .. 3 (drops most noise); 2 chosen
    # on validation speakers (docs/long-recordings.md). Mode 2 takes noise that STARTS after speech (a step in the
    # background) for speech for seconds; under a steady background it does not
    frame_ms: int = 30  # the detector's frame: 10, 20 or 30 ms
    min_speech_s: float = 0.25  # a segment with less speech than this is dropped
    max_gap_s: float = 0.25  # a pause up to this long inside speech is bridged (one segment)
    pad_s: float = 0.1  # each segment widened by this much on both sides (not over a neighbour)
    max_segment_s: float = 30.0  # a segment is closed at this length; the speech goes on in the next

    KEYS = ("vad_aggressiveness", "frame_ms", "min_speech_s", "max_gap_s", "pad_s", "max_segment_s")

    @classmethod
    def from_params(cls, params: dict) -> "SegmentConfig":
        """From params.yaml's `segments` section (missing keys take the defaults); ParamsError names a bad key."""
        sec = section(params or {}, "segments", keys=cls.KEYS)
        d = cls()
        frame = number(sec, "frame_ms", "segments", default=d.frame_ms, integer=True, lo=10, hi=30)
        if frame not in (10, 20, 30):
            from pipeline.errors import ParamsError

            raise ParamsError("segments.frame_ms", f"{frame!r} is not one of: 10, 20, 30 (the detector's frames)")
        return cls(
            vad_aggressiveness=number(sec, "vad_aggressiveness", "segments", default=d.vad_aggressiveness,
                                      integer=True, lo=0, hi=3),
            frame_ms=frame,
            min_speech_s=float(number(sec, "min_speech_s", "segments", default=d.min_speech_s, lo=0, hi=60)),
            max_gap_s=float(number(sec, "max_gap_s", "segments", default=d.max_gap_s, lo=0, hi=60)),
            pad_s=float(number(sec, "pad_s", "segments", default=d.pad_s, lo=0, hi=5)),
            max_segment_s=float(number(sec, "max_segment_s", "segments", default=d.max_segment_s, lo=1, hi=3600)),
        )

    def to_card(self) -> dict:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict) -> "SegmentConfig":
        """The card's settings; a card written before segments existed gets today's defaults."""
        return cls(**{k: v for k, v in (card.get("segments") or {}).items() if k in cls.KEYS})


@dataclass
class Segment:
    start: float  # seconds of the recording
    end: float
    samples: np.ndarray  # mono float32 at the recording's rate, as read


@dataclass
class _Pending:
    start: float
    end: float


@dataclass
class Segmenter:
    """The detector's state across the blocks of one recording; `energy` (dB per frame) and `duration` are
    filled as it goes (the timeline picture draws them)."""
    cfg: SegmentConfig
    energy: list = field(default_factory=list)
    duration: float = 0.0

    def segments(self, blocks, sr: int):
        """Segments of the recording whose mono blocks at `sr` are given, each yielded once it is closed."""
        import webrtcvad

        cfg, sr = self.cfg, int(sr)
        vad = webrtcvad.Vad(cfg.vad_aggressiveness)
        frame_n = VAD_RATE * cfg.frame_ms // 1000
        frame_s = cfg.frame_ms / 1000.0
        resampler = None
        if sr != VAD_RATE:
            import soxr

            resampler = soxr.ResampleStream(sr, VAD_RATE, 1, dtype="float32", quality="HQ")
        held = np.zeros(0, np.float32)  # the recording at sr from sample `held_from` on: what a segment may need
        held_from = 0
        leftover = np.zeros(0, np.float32)  # the 16 kHz samples short of a whole frame
        frames = 0  # frames decided so far
        opened = None  # first speech frame of the segment being grown
        last_speech = -1
        pending: list[_Pending] = []  # closed, waiting for their end padding to be read
        released_end = 0.0  # end of the last segment handed on: the next one's padding stops there
        read = 0  # samples read at sr

        def close(first: int, last: int, pad_end: bool = True):
            start, end = first * frame_s, (last + 1) * frame_s
            if end - start < cfg.min_speech_s:
                return
            lo = max(start - cfg.pad_s, released_end, pending[-1].end if pending else 0.0, 0.0)
            pending.append(_Pending(lo, end + (cfg.pad_s if pad_end else 0.0)))

        def release(now: float, final: bool = False):
            nonlocal released_end
            while pending and (final or pending[0].end <= now):
                p = pending.pop(0)
                end = min(p.end, read / sr)
                a, b = int(round(p.start * sr)), int(round(end * sr))
                if b > a:
                    released_end = end
                    yield Segment(p.start, end, held[a - held_from:b - held_from].copy())

        def decide(y16: np.ndarray):
            nonlocal leftover, frames, opened, last_speech
            y16 = np.concatenate([leftover, y16]) if leftover.size else y16
            whole = len(y16) // frame_n
            leftover = y16[whole * frame_n:].copy()
            if whole == 0:
                return
            block = y16[:whole * frame_n].reshape(whole, frame_n)
            rms = np.sqrt(np.mean(np.square(block, dtype=np.float64), axis=1))
            self.energy.extend((20 * np.log10(np.maximum(rms, 1e-5))).astype(np.float32).tolist())
            pcm = (np.clip(block, -1.0, 1.0) * 32767).astype("<i2")
            for row in pcm:
                i = frames
                frames += 1
                if vad.is_speech(row.tobytes(), VAD_RATE):
                    if opened is None:
                        opened = i
                    last_speech = i
                    if (i + 1 - opened) * frame_s >= cfg.max_segment_s:  # long speech: close, go on in the next
                        close(opened, i, pad_end=False)
                        opened = None
                elif opened is not None and (i - last_speech) * frame_s > cfg.max_gap_s:
                    close(opened, last_speech)
                    opened = None

        def keep_from() -> float:
            """Seconds of the recording from which a segment may still need audio."""
            if pending:
                return pending[0].start
            if opened is not None:
                return max(opened * frame_s - cfg.pad_s, 0.0)
            return max(frames * frame_s - cfg.pad_s - frame_s, 0.0)

        for x in blocks:
            x = np.asarray(x, dtype=np.float32)
            held = np.concatenate([held, x])
            read += len(x)
            decide(resampler.resample_chunk(x) if resampler is not None else x)
            yield from release(frames * frame_s)
            drop = max(0, int(keep_from() * sr) - 1 - held_from)
            if drop:
                held, held_from = held[drop:], held_from + drop
        if resampler is not None:
            decide(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        if opened is not None:
            close(opened, last_speech)
        self.duration = read / sr if sr else 0.0
        yield from release(self.duration, final=True)
