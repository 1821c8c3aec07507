"""Known audio for the tests: speech from espeak-ng, encoded like a browser's MediaRecorder output."""

import hashlib
import shutil
import subprocess
from pathlib import Path

from services.audio.ffmpeg import ffmpeg_executable


def require(binary: str) -> str:
    """Fail loudly, never skip: the test command installs these."""
    found = shutil.which(binary)
    if not found:
        raise RuntimeError(f'{binary} is not installed; run the README test command (make test) to install it')
    return found


def speech_wav(path: Path, seconds: float) -> Path:
    """Speech of about `seconds`, padded or cut to exactly that length with sox."""
    text = (
        'Voice recorder keeps every second of what you say. The quick brown fox jumps over the lazy dog. '
        'One, two, three, four, five, six, seven, eight, nine, ten. '
    ) * 40
    raw = path.with_suffix('.raw.wav')
    subprocess.run([require('espeak-ng'), '-s', '150', '-w', str(raw), text], check=True, capture_output=True)
    subprocess.run(
        [
            require('sox'),
            str(raw),
            '-r',
            '48000',
            '-c',
            '1',
            str(path),
            'trim',
            '0',
            str(seconds),
            'pad',
            '0',
            str(seconds),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [require('sox'), str(path), str(path.with_suffix('.trim.wav')), 'trim', '0', str(seconds)],
        check=True,
        capture_output=True,
    )
    path.with_suffix('.trim.wav').replace(path)
    raw.unlink()
    return path


def live_webm(wav: Path, target: Path) -> bytes:
    """Opus in WebM written to a pipe: like MediaRecorder's output, it has no duration and no cues."""
    result = subprocess.run(
        [ffmpeg_executable(), '-v', 'error', '-i', str(wav), '-c:a', 'libopus', '-b:a', '32k', '-f', 'webm', 'pipe:1'],
        check=True,
        capture_output=True,
    )
    target.write_bytes(result.stdout)
    return result.stdout


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


WEBM_MAGIC = b'\x1a\x45\xdf\xa3'  # EBML: what every WebM file, and so every recording's first chunk, starts with


def spoken_wav(text: str, path: Path, voice: str | None = None) -> Path:
    """`text` spoken by espeak-ng (in its `voice`, e.g. 'de' or 'es'; default English), with half a second of silence
    around it; the same every time (sox's dither is random unless told to repeat itself: -R)."""
    raw = path.with_suffix('.raw.wav')
    chosen = ['-v', voice] if voice else []
    subprocess.run([require('espeak-ng'), *chosen, '-s', '150', '-w', str(raw), text], check=True, capture_output=True)
    subprocess.run(
        [require('sox'), '-R', str(raw), '-r', '48000', '-c', '1', str(path), 'pad', '0.5', '0.5'],
        check=True,
        capture_output=True,
    )
    return path


def spoken_webm(text: str, folder: Path, name: str = 'spoken', voice: str | None = None) -> bytes:
    """`text` spoken as a browser's WebM would carry it."""
    return live_webm(spoken_wav(text, folder / f'{name}.wav', voice), folder / f'{name}.webm')


def decoded_sha256(path: Path) -> str:
    """Decode the whole file; any decoder complaint fails the test. Returns the hash of its samples."""
    run = subprocess.run(
        [require('ffmpeg'), '-v', 'error', '-i', str(path), '-f', 's16le', '-ac', '1', 'pipe:1'],
        capture_output=True,
        check=False,
    )
    assert (run.returncode, run.stderr.decode(errors='replace')) == (0, ''), f'{path} does not decode cleanly'
    return hashlib.sha256(run.stdout).hexdigest()
