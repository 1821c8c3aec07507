"""A recording's waveform: a few hundred loudness peaks, computed once after finalize, drawn on /records.

Decoding is the one costly step on the way (≈5 s for an hour of opus), so it runs off the finalize path
and streams ffmpeg's output in blocks: memory stays flat whatever the length.
"""

import math
from pathlib import Path
from typing import IO

import numpy as np

from services.audio.ffmpeg import DEFAULT_FFMPEG_TIMEOUT_S, ffmpeg_reading, processing_failed, run_ffmpeg
from services.audio.formats import AudioFormat, format_of_file

PEAK_COUNT = 160
SAMPLE_RATE = 2000  # plenty for a loudness outline
READ_BLOCK = 64 * 1024


def compute_peaks(
    path: Path,
    duration_ms: int,
    count: int = PEAK_COUNT,
    *,
    fmt: AudioFormat | None = None,
    timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S,
    niceness: int = 0,
) -> list[float]:
    """`count` values from 0 to 1: the loudest sample of each equal slice of the recording.

    `fmt` is the recording's container (default: the one the file name declares); it is forced, never guessed.
    """
    fmt = fmt or format_of_file(path)
    expected = max(1, duration_ms * SAMPLE_RATE // 1000)
    peaks = _Peaks(per_bucket=max(1, math.ceil(expected / count)))
    output = ('-map', '0:a:0', '-ac', '1', '-ar', str(SAMPLE_RATE), '-f', 's16le', 'pipe:1')
    run = run_ffmpeg(ffmpeg_reading(path, fmt, *output), timeout_s=timeout_s, read_output=peaks.read, niceness=niceness)
    if run.returncode != 0:
        raise processing_failed(run, fmt, 'the audio could not be decoded for its waveform')
    found = peaks.finish()
    loudest = max(found, default=0) or 1
    return [round(peak / loudest, 3) for peak in found[:count]]


class _Peaks:
    """Folds 16-bit samples into bucket maxima as they stream in, so memory stays flat. With numpy rather than
    Python's `max` over each sample: it runs in the web process, where that held the GIL from the event loop for
    77 ms per 10 minutes of audio (2 ms now)."""

    def __init__(self, per_bucket: int) -> None:
        self.per_bucket = per_bucket
        self.peaks: list[int] = []
        self.bucket_peak, self.bucket_fill = 0, 0

    def read(self, stream: IO[bytes]) -> None:
        leftover = b''
        while block := stream.read(READ_BLOCK):
            block = leftover + block
            usable = len(block) - len(block) % 2
            self.add(np.frombuffer(block[:usable], dtype='<i2').astype(np.int32))
            leftover = block[usable:]

    def add(self, samples: np.ndarray) -> None:
        position = 0
        while position < samples.size:
            take = min(self.per_bucket - self.bucket_fill, samples.size - position)
            piece = samples[position : position + take]
            self.bucket_peak = max(self.bucket_peak, int(piece.max()), -int(piece.min()))
            self.bucket_fill += take
            position += take
            if self.bucket_fill == self.per_bucket:
                self.peaks.append(self.bucket_peak)
                self.bucket_peak, self.bucket_fill = 0, 0

    def finish(self) -> list[int]:
        if self.bucket_fill:
            self.peaks.append(self.bucket_peak)
            self.bucket_peak, self.bucket_fill = 0, 0
        return self.peaks
