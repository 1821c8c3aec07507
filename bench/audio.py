"""Synthetic opus in WebM, written to a pipe like MediaRecorder's output (no duration, no cues), cut into chunks."""

import subprocess
from pathlib import Path

from services.audio.ffmpeg import ffmpeg_executable

CHUNK_BYTES = 16 * 1024  # what a browser's MediaRecorder sends per second at its default 128 kbit/s opus
BITRATE = '128k'
LOOP_SECONDS = 60


def loop_source(folder: Path) -> Path:
    """One minute of pink noise encoded once; longer recordings loop it with a stream copy, no re-encoding."""
    source = folder / 'loop.webm'
    if not source.exists():
        noise = f'anoisesrc=d={LOOP_SECONDS}:c=pink:r=48000:a=0.1'
        _ffmpeg('-f', 'lavfi', '-i', noise, '-c:a', 'libopus', '-b:a', BITRATE, '-compression_level', '0', str(source))
    return source


def live_webm(folder: Path, seconds: int) -> bytes:
    """`seconds` of audio as a live WebM stream: exactly what the server receives, concatenated."""
    return looped(loop_source(folder), seconds)


def looped(source: Path, seconds: int) -> bytes:
    """A WebM file repeated to `seconds` by stream copy, as one live stream."""
    return _ffmpeg('-stream_loop', '-1', '-i', str(source), '-t', str(seconds), '-c', 'copy', '-f', 'webm', 'pipe:1')


def split(data: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _ffmpeg(*args: str) -> bytes:
    command = [ffmpeg_executable(), '-hide_banner', '-nostdin', '-v', 'error', '-y', *args]
    return subprocess.run(command, check=True, capture_output=True, timeout=600).stdout
