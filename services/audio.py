"""Audio work with ffmpeg: stream-copy remux on the finalize path, never a decode."""

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import AudioProcessingFailed, InvalidInput

log = logging.getLogger(__name__)
_DURATION = re.compile(r'Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)')


@dataclass(frozen=True)
class AudioFormat:
    mime_type: str
    extension: str
    muxer: str
    muxer_options: tuple[str, ...] = ()


FORMATS = {
    'audio/webm': AudioFormat('audio/webm', 'webm', 'webm'),
    'audio/ogg': AudioFormat('audio/ogg', 'ogg', 'ogg'),
    'audio/mp4': AudioFormat('audio/mp4', 'm4a', 'mp4', ('-movflags', '+faststart')),
}


def audio_format(mime_type: str) -> AudioFormat:
    """The container for a browser's MediaRecorder mimeType, codec parameters ignored."""
    base = mime_type.split(';', 1)[0].strip().lower()
    if base not in FORMATS:
        raise InvalidInput(f'unsupported audio type {mime_type!r}; expected one of {", ".join(FORMATS)}')
    return FORMATS[base]


@cache
def ffmpeg_executable() -> str:
    """ffmpeg from PATH, else the binary shipped in the imageio-ffmpeg wheel (no system packages needed)."""
    found = shutil.which('ffmpeg')
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def remux(source: Path, target: Path, fmt: AudioFormat) -> int:
    """Copy the stream into a fresh container, which writes duration and cues; returns the duration in ms."""
    command = [
        ffmpeg_executable(),
        '-hide_banner',
        '-nostdin',
        '-v',
        'error',
        '-y',
        '-i',
        str(source),
        '-map',
        '0:a:0',
        '-c',
        'copy',
        *fmt.muxer_options,
        '-f',
        fmt.muxer,
        str(target),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        reason = _last_line(result.stderr) or 'ffmpeg failed'
        log.warning('remux of %s failed: %s', source, result.stderr.strip()[-2000:])
        raise AudioProcessingFailed(f'the audio could not be processed: {reason}')
    return probe_duration_ms(target)


def probe_duration_ms(path: Path) -> int:
    """Read the container's duration from ffmpeg's header dump (the wheel ships no ffprobe)."""
    result = subprocess.run(
        [ffmpeg_executable(), '-hide_banner', '-nostdin', '-i', str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = _DURATION.search(result.stderr)
    if not match:
        raise AudioProcessingFailed('the audio has no readable duration')
    hours, minutes, seconds = match.groups()
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ''
