"""Whisper's encoder on a window sized to the audio, for the live pieces: faster-whisper pads every call to the 30 s
the model was trained on, so a 4-s piece cost as much as 30 s (about 2 CPU-s with Whisper base on these cores).
CTranslate2 takes shorter inputs; below about 10 s the model is surprised by them (it loops, it does not know when to
stop), so the window keeps a floor and a margin past the audio. The full pass after Stop keeps the 30-s windows.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FRAMES_PER_S = 100  # Whisper's mel frames
FULL_FRAMES = 3000  # the 30 s every call is padded to
FLOOR_S = 10.0
MARGIN_S = 2.0


class EncoderWindow:
    """The frames the next encode on this thread keeps; each compute thread of a worker has its own."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def sized_to(self, seconds: float, *, floor_s: float = FLOOR_S, margin_s: float = MARGIN_S) -> Iterator[None]:
        wanted = max(floor_s, seconds + margin_s) * FRAMES_PER_S
        self._local.frames = min(FULL_FRAMES, 2 * int(wanted / 2 + 0.5))  # even: the encoder halves them
        try:
            yield
        finally:
            self._local.frames = None

    def trim(self, features: Any) -> Any:
        frames = getattr(self._local, 'frames', None)
        return features if frames is None else features[..., :frames]


def windowed(model_class: type) -> type:
    """`model_class` (faster-whisper's WhisperModel) with an `encoder_window` its encode calls keep to."""

    class WindowedWhisperModel(model_class):  # type: ignore[misc, valid-type]
        encoder_window = EncoderWindow()

        def encode(self, features: Any) -> Any:
            return super().encode(self.encoder_window.trim(features))

    return WindowedWhisperModel
