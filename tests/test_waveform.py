"""Waveform peaks follow the loudness of the audio and stay a fixed size whatever its length."""

import subprocess
from pathlib import Path

import pytest

from services.audio.ffmpeg import ffmpeg_executable
from services.audio.peaks import PEAK_COUNT, compute_peaks
from services.core.errors import AudioProcessingFailed


def tone_then_silence(path: Path) -> Path:
    """Two seconds of a loud tone, then two of silence."""
    subprocess.run(
        [
            ffmpeg_executable(),
            '-v',
            'error',
            '-y',
            '-f',
            'lavfi',
            '-i',
            'sine=frequency=440:duration=2',
            '-f',
            'lavfi',
            '-i',
            'anullsrc=r=48000:cl=mono:d=2',
            '-filter_complex',
            '[0][1]concat=n=2:v=0:a=1',
            '-c:a',
            'libopus',
            str(path),
        ],
        check=True,
    )
    return path


def test_peaks_show_where_the_sound_is(tmp_path: Path) -> None:
    peaks = compute_peaks(tone_then_silence(tmp_path / 'tone.webm'), duration_ms=4000)
    assert len(peaks) == PEAK_COUNT
    first, second = peaks[: PEAK_COUNT // 2 - 5], peaks[PEAK_COUNT // 2 + 5 :]
    assert min(first) > 0.5
    assert max(second) < 0.05
    assert max(peaks) == 1.0


def test_speech_gives_a_varied_outline(tmp_path: Path, webm_5s: bytes) -> None:
    path = tmp_path / 'speech.webm'
    path.write_bytes(webm_5s)
    peaks = compute_peaks(path, duration_ms=5000, count=50)
    assert len(peaks) == 50
    assert max(peaks) - min(peaks) > 0.5


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / 'garbage.webm'
    path.write_bytes(b'not audio' * 100)
    with pytest.raises(AudioProcessingFailed):
        compute_peaks(path, duration_ms=1000)
