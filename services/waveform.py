"""A recording's waveform: a few hundred loudness peaks, computed once after finalize, drawn on /records.

Decoding is the one costly step on the way (≈5 s for an hour of opus), so it runs off the finalize path
and streams ffmpeg's output in blocks: memory stays flat whatever the length.
"""

import math
import subprocess
from array import array
from pathlib import Path

from .audio import ffmpeg_executable
from .errors import AudioProcessingFailed

PEAK_COUNT = 160
SAMPLE_RATE = 2000  # plenty for a loudness outline
READ_BLOCK = 64 * 1024


def compute_peaks(path: Path, duration_ms: int, count: int = PEAK_COUNT) -> list[float]:
    """`count` values from 0 to 1: the loudest sample of each equal slice of the recording."""
    expected = max(1, duration_ms * SAMPLE_RATE // 1000)
    per_bucket = max(1, math.ceil(expected / count))
    command = [
        ffmpeg_executable(),
        '-v',
        'error',
        '-nostdin',
        '-i',
        str(path),
        '-ac',
        '1',
        '-ar',
        str(SAMPLE_RATE),
        '-f',
        's16le',
        'pipe:1',
    ]
    peaks: list[int] = []
    bucket_peak, bucket_fill = 0, 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        leftover = b''
        while block := process.stdout.read(READ_BLOCK):
            block = leftover + block
            usable = len(block) - len(block) % 2
            samples, leftover = array('h', block[:usable]), block[usable:]
            position = 0
            while position < len(samples):
                take = min(per_bucket - bucket_fill, len(samples) - position)
                piece = samples[position : position + take]
                bucket_peak = max(bucket_peak, max(piece), -min(piece))
                bucket_fill += take
                position += take
                if bucket_fill == per_bucket:
                    peaks.append(bucket_peak)
                    bucket_peak, bucket_fill = 0, 0
    if process.returncode != 0:
        raise AudioProcessingFailed('the audio could not be decoded for its waveform')
    if bucket_fill:
        peaks.append(bucket_peak)
    loudest = max(peaks, default=0) or 1
    return [round(peak / loudest, 3) for peak in peaks[:count]]
