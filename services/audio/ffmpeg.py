"""Audio work with ffmpeg: stream-copy remux on the finalize path, never a decode.

Every ffmpeg run that reads a file is built by `ffmpeg_reading`: left to itself, ffmpeg guesses the format from
the bytes and follows what it finds (DASH manifests, HLS playlists, concat scripts, `subfile:` URLs) to other
files on the server, so a user's "audio" could be someone else's recording.
"""

import logging
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

from services.audio.formats import AudioFormat, format_of_file
from services.core.errors import AudioProcessingFailed
from services.core.priority import lower_priority

log = logging.getLogger(__name__)
_DURATION = re.compile(r'Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)')
DEFAULT_FFMPEG_TIMEOUT_S = 900.0  # the settings' default; callers pass their own
STDERR_KEPT = 20_000


@cache
def ffmpeg_executable() -> str:
    """ffmpeg from PATH, else the binary shipped in the imageio-ffmpeg wheel (no system packages needed)."""
    found = shutil.which('ffmpeg')
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def local_url(path: Path) -> str:
    """An absolute `file:` URL: no name is ever read as a protocol (`data:`, `subfile:`) or an image pattern."""
    return f'file:{path.resolve()}'


def ffmpeg_reading(source: Path, fmt: AudioFormat, *output: str, loglevel: str = 'error') -> list[str]:
    """The one way we run ffmpeg on a file: that local file only, read as `fmt` and nothing else."""
    only_this_file = ('-protocol_whitelist', 'file', '-format_whitelist', fmt.demuxer, *fmt.demuxer_options)
    reading = (*only_this_file, '-f', fmt.demuxer, '-i', local_url(source))
    return [ffmpeg_executable(), '-hide_banner', '-nostdin', '-y', '-v', loglevel, *reading, *output]


@dataclass(frozen=True)
class FfmpegRun:
    returncode: int
    stderr: str  # for the log only: it names server paths
    timed_out: bool


def run_ffmpeg(
    command: list[str],
    *,
    timeout_s: float,
    read_output: Callable[[IO[bytes]], None] | None = None,
    niceness: int = 0,
) -> FfmpegRun:
    """Run to the end, or kill it at `timeout_s`; `read_output` streams its stdout while it runs. Work nobody waits
    on at once runs at a `niceness` of its own, below the web process that starts it (core/priority.py)."""
    expired = threading.Event()
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a chatty ffmpeg can never block on it
        stdout = subprocess.PIPE if read_output else subprocess.DEVNULL
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=errors)
        if niceness:  # set from here, not in the child (preexec_fn is unsafe in a process with threads)
            lower_priority('low', niceness, process.pid)

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout_s, expire)
        timer.start()
        try:
            if read_output is not None and process.stdout is not None:
                read_output(process.stdout)
            process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        errors.seek(max(0, errors.seek(0, 2) - STDERR_KEPT))  # its tail: where ffmpeg says what went wrong
        stderr = errors.read().decode(errors='replace')
    return FfmpegRun(process.returncode, stderr, expired.is_set() and process.returncode != 0)


def processing_failed(run: FfmpegRun, fmt: AudioFormat, what: str) -> AudioProcessingFailed:
    """A plain sentence for users ("`what`: it is not valid WebM audio"); ffmpeg's own words go to the log."""
    log.warning('ffmpeg: %s (exit %s, timed out: %s): %s', what, run.returncode, run.timed_out, run.stderr.strip())
    reason = 'it took too long' if run.timed_out else f'it is not valid {fmt.label} audio'
    return AudioProcessingFailed(f'{what}: {reason}')


def remux(
    source: Path,
    target: Path,
    fmt: AudioFormat,
    *,
    timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S,
    into: AudioFormat | None = None,
) -> int:
    """Copy the stream into a fresh container (`into`, else the same one), which writes duration and cues; returns
    the duration in ms. The audio track of an MP4 video is copied into an M4A this way."""
    into = into or fmt
    output = ('-map', '0:a:0', '-c', 'copy', *into.muxer_options, '-f', into.muxer, local_url(target))
    run = run_ffmpeg(ffmpeg_reading(source, fmt, *output), timeout_s=timeout_s)
    if run.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)  # a half-written file is no one's audio
        raise processing_failed(run, fmt, 'the audio could not be processed')
    return probe_duration_ms(target, into, timeout_s=timeout_s)


def encode_opus(
    source: Path, target: Path, fmt: AudioFormat, into: AudioFormat, *, timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S
) -> None:
    """One Opus copy (in `into`, an Ogg) of audio browsers cannot play as it is, e.g. WAV: 48 kbit/s holds speech
    and music well, a tenth of the size of 16-bit PCM."""
    output = ('-map', '0:a:0', '-vn', '-c:a', 'libopus', '-b:a', '48k', '-f', into.muxer, local_url(target))
    run = run_ffmpeg(ffmpeg_reading(source, fmt, *output), timeout_s=timeout_s)
    if run.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)
        raise processing_failed(run, fmt, 'the audio could not be converted for playing')


def probe_duration_ms(
    path: Path, fmt: AudioFormat | None = None, *, timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S
) -> int:
    """Read the container's duration from ffmpeg's header dump (the wheel ships no ffprobe).

    Without `fmt`, the container is the one our own file name declares; it is still forced, never guessed.
    """
    fmt = fmt or format_of_file(path)
    run = run_ffmpeg(ffmpeg_reading(path, fmt, loglevel='info'), timeout_s=timeout_s)  # no output: exits 1
    match = _DURATION.search(run.stderr)
    if not match:
        log.warning('ffmpeg found no duration in %s (timed out: %s): %s', path, run.timed_out, run.stderr.strip())
        raise AudioProcessingFailed('the audio has no readable duration')
    hours, minutes, seconds = match.groups()
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)
