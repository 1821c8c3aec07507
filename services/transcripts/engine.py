"""Speech to text on this machine: Whisper (faster-whisper, CTranslate2) over audio decoded by our own ffmpeg path.

faster-whisper would open a path with PyAV, which guesses the container; it is given float samples instead, read
from one forced-format ffmpeg run (`ffmpeg_reading`) a window at a time, so an hour never sits in memory whole
(an hour of 16 kHz float32 is 230 MB) and the audio is decoded once.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from services.audio.ffmpeg import ffmpeg_reading, processing_failed, run_ffmpeg
from services.audio.formats import AudioFormat
from services.core.errors import AppError
from services.transcripts.decoding import (
    FULL_PASS,
    Decoding,
    heard_as_speech,
    says_again,
    spoken_form,
    words_before_a_loop,
)
from services.transcripts.vocabulary import vocabulary_prompt

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000
ENGLISH = 'en'
# Whisper's peak memory grows with the audio it is given (measured: 60 s 345 MB, 2 min 406 MB, 5 min 549 MB,
# 10 min 886 MB); a cut at a window's end costs one segment heard again.
WINDOW_S = 120
MAX_CARRY_MS = 30_000  # speech the window's end cut off is heard again at the start of the next window
CUT_MARGIN_MS = 1_000


class TranscriptionFailed(AppError):
    status_code = 422


@dataclass(frozen=True)
class Word:
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class Segment:
    start_ms: int
    end_ms: int
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Transcription:
    segments: list[Segment]
    language: str | None  # ISO 639-1: the one asked for, else the one heard; None: no speech to tell it by


def clean_word(word: str) -> str:
    return ''.join(ch for ch in word if ch.isprintable()).strip()


class Transcriber:
    def __init__(self, model: Any, *, window_s: int = WINDOW_S, decoding: Decoding = FULL_PASS) -> None:
        """`model`: a faster-whisper model (models.load_model); `decoding`: how it listens, with its quality guards."""
        self.model = model
        self.window_bytes = window_s * SAMPLE_RATE * 4
        self.decoding = decoding
        self.multilingual = bool(model.model.is_multilingual)  # an English-only model (tiny.en) cannot detect

    def transcribe_file(
        self,
        path: Path,
        fmt: AudioFormat,
        *,
        language: str | None,
        duration_ms: int,
        timeout_s: float,
        vocabulary: Sequence[str] = (),
        on_progress: Callable[[float], None] = lambda _done: None,
    ) -> Transcription:
        """Segments with word times in ms, heard as speech in `language` (ISO 639-1; None: detected in the first window
        that has speech, then kept for the rest), listening for the names and terms of `vocabulary` (vocabulary.py);
        `on_progress` hears the fraction done, and may raise to stop the work.
        """
        deadline = time.monotonic() + timeout_s
        segments: list[Segment] = []

        def heard(end_ms: int) -> None:
            if time.monotonic() > deadline:
                raise TranscriptionFailed(f'transcribing took longer than the {timeout_s / 60:g}-minute limit')
            on_progress(min(0.99, end_ms / max(duration_ms, 1)))

        def read(stdout: IO[bytes]) -> None:
            nonlocal language
            carry, carry_ms = np.zeros(0, np.float32), 0
            while True:
                data = stdout.read(self.window_bytes)
                final = len(data) < self.window_bytes
                samples = np.frombuffer(data[: len(data) // 4 * 4], dtype='<f4')
                audio = np.concatenate((carry, samples)) if carry.size else samples
                found = self.transcribe_samples(
                    audio, language=language, vocabulary=vocabulary, offset_ms=carry_ms, heard=heard
                )
                language = language or found.language
                kept, cut_ms = keep_whole(found.segments, carry_ms, carry_ms + len(audio) * 1000 // SAMPLE_RATE, final)
                segments.extend(kept)
                if final:
                    return
                carry = audio[(cut_ms - carry_ms) * SAMPLE_RATE // 1000 :].copy()
                carry_ms = cut_ms

        output = ('-map', '0:a:0', '-ac', '1', '-ar', str(SAMPLE_RATE), '-f', 'f32le', 'pipe:1')
        run = run_ffmpeg(ffmpeg_reading(path, fmt, *output), timeout_s=timeout_s, read_output=read)
        if run.returncode != 0:
            raise processing_failed(run, fmt, 'the audio could not be transcribed')
        return Transcription(segments, language)

    def transcribe_samples(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        vocabulary: Sequence[str] = (),
        offset_ms: int = 0,
        heard: Callable[[int], None] = lambda _ms: None,
    ) -> Transcription:
        """16 kHz mono float32 → segments whose times are offset by `offset_ms`, in `language` (None: the language is
        detected, and told only when speech was heard: Whisper names one for silence too), listening for the names and
        terms of `vocabulary`."""
        language = language if self.multilingual else ENGLISH  # what an English-only model hears, whatever it is told
        if audio.size == 0 or (language is None and not self._has_speech(audio)):
            return Transcription([], language)
        hotwords = vocabulary_prompt(vocabulary)
        found, info = self.model.transcribe(audio, language=language, hotwords=hotwords, **self.decoding.options())
        segments, guard = [], SegmentGuard(offset_ms, self.decoding, hotwords)
        for segment in found:
            if (kept := guard.keep(segment)) is not None:
                segments.append(kept)
            heard(offset_ms + _ms(float(segment.end)))
        if language is None and segments:
            log.info('heard %s (probability %.2f)', info.language, info.language_probability)
        return Transcription(segments, language or (str(info.language) if segments else None))

    def _has_speech(self, audio: np.ndarray) -> bool:
        """Whether the voice detection hears any speech in `audio`. Asked only before the language is known:
        faster-whisper runs the model's language detection even on a window its voice detection emptied, a 30-s
        encoder pass for nothing (measured: 3 minutes of noise 3.7 CPU-s instead of 0.8), so every window of a
        recording with no speech in it paid one. Once a language is heard, the windows after it skip detection."""
        return not self.decoding.vad_filter or bool(get_speech_timestamps(audio, VadOptions()))


def guarded_words(segment: Any, offset_ms: int, decoding: Decoding, hotwords: str | None = None) -> Segment | None:
    """faster-whisper's segment in ms, with its words' times, less what Whisper invented (decoding.py's quality
    guards; `hotwords`: the ones the model was given, if any): None when nothing of it was said.

    A loop at the end is cut off before the segment is judged: "…young man, N-N-N-N…" keeps "…young man"."""
    words = [(float(w.start), float(w.end), clean_word(w.word)) for w in segment.words or ()]
    timed = tuple(Word(offset_ms + _ms(s), offset_ms + _ms(e), w) for s, e, w in words if w)
    kept = timed[: words_before_a_loop([word.text for word in timed])]
    text = segment.text if len(kept) == len(timed) else ' '.join(word.text for word in kept)
    if not heard_as_speech(text, no_speech_prob=segment.no_speech_prob, decoding=decoding, hotwords=hotwords):
        log.info('dropped what Whisper invented at %.1f s: %r', segment.start, segment.text[:80])
        return None
    if not kept:
        return None
    end_ms = offset_ms + _ms(float(segment.end))
    if len(kept) < len(timed):
        log.info('dropped a loop at %.1f s: %r', timed[len(kept)].start_ms / 1000, segment.text[-80:])
        end_ms = kept[-1].end_ms
    return Segment(offset_ms + _ms(float(segment.start)), end_ms, kept)


class SegmentGuard:
    """The quality guards over one pass's segments in their order: each segment's own (`guarded_words`), and a
    segment that only says the one kept before it again (`says_again`) is dropped."""

    def __init__(self, offset_ms: int, decoding: Decoding, hotwords: str | None = None) -> None:
        self.offset_ms = offset_ms
        self.decoding = decoding
        self.hotwords = hotwords
        self._before: list[str] = []

    def keep(self, segment: Any) -> Segment | None:
        kept = guarded_words(segment, self.offset_ms, self.decoding, self.hotwords)
        if kept is None:
            return None
        said = spoken_form(' '.join(word.text for word in kept.words)).split()
        if says_again(self._before, said):
            log.info('dropped a segment saying the one before again at %.1f s: %r', segment.start, segment.text[:80])
            return None
        self._before = said
        return kept


def keep_whole(found: list[Segment], start_ms: int, end_ms: int, final: bool) -> tuple[list[Segment], int]:
    """The segments to keep from a window, and where the next window starts: speech cut off by the window's end is
    dropped and heard again whole; at most MAX_CARRY_MS (and half the window) is carried over, so windows advance."""
    if final:
        return found, end_ms
    earliest = end_ms - min(MAX_CARRY_MS, (end_ms - start_ms) // 2)
    if found and found[-1].end_ms > end_ms - CUT_MARGIN_MS and found[-1].start_ms > earliest:
        before = found[-2].end_ms if len(found) > 1 else start_ms
        return found[:-1], max(before, found[-1].start_ms - 300, start_ms)
    last_end = found[-1].end_ms if found else start_ms
    return found, min(end_ms, max(last_end, earliest))


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))
