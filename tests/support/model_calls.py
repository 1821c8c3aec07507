"""A spy on the real faster-whisper model, for tests whose outcome alone cannot show what the model was asked."""

from typing import Any


class ModelCalls:
    """The real model, noting the length in samples of the audio of each `transcribe` and `detect_language` call."""

    def __init__(self, model: Any) -> None:
        self.real = model
        self.transcribed: list[int] = []
        self.detected: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def transcribe(self, audio: Any, *args: Any, **options: Any) -> Any:
        self.transcribed.append(audio.size)
        return self.real.transcribe(audio, *args, **options)

    def detect_language(self, *, audio: Any, **options: Any) -> Any:
        self.detected.append(audio.size)
        return self.real.detect_language(audio=audio, **options)
