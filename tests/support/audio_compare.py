"""Does the saved audio hold what the microphone heard? Compares loudness envelopes, aligned by correlation."""

import subprocess
from pathlib import Path

import numpy as np

from services.audio.ffmpeg import ffmpeg_executable

RATE = 8000
WINDOW = 400  # 50 ms


def envelope(path: Path) -> np.ndarray:
    pcm = subprocess.run(
        [ffmpeg_executable(), '-v', 'error', '-i', str(path), '-ac', '1', '-ar', str(RATE), '-f', 's16le', 'pipe:1'],
        check=True,
        capture_output=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    frames = len(samples) // WINDOW
    return np.sqrt((samples[: frames * WINDOW].reshape(frames, WINDOW) ** 2).mean(axis=1))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator else 0.0


def best_alignment(recorded: np.ndarray, source: np.ndarray, max_lag: int = 60) -> tuple[int, float]:
    """The lag (in windows) of `recorded` within `source` that matches best over the first seconds."""
    head = recorded[:200]
    scores = [
        (lag, _correlation(head, source[lag : lag + len(head)]))
        for lag in range(max_lag)
        if lag + len(head) <= len(source)
    ]
    return max(scores, key=lambda item: item[1])


def similarity_by_segment(recorded_path: Path, source_path: Path, segment_s: float = 5.0) -> list[float]:
    """Correlation of each segment with the source at ONE alignment: a lost or shifted stretch scores low."""
    recorded, source = envelope(recorded_path), envelope(source_path)
    lag, _ = best_alignment(recorded, source)
    size = int(segment_s * RATE / WINDOW)
    scores = []
    for start in range(0, len(recorded) - size + 1, size):
        aligned = source[lag + start : lag + start + size]
        if len(aligned) < size:
            break
        scores.append(_correlation(recorded[start : start + size], aligned))
    return scores
