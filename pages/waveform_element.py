"""The waveform element: the Python half of `assets/waveform.js`, the player's one seek bar."""

from nicegui import ui


class Waveform(ui.element, component='../assets/waveform.js', dependencies=['../assets/recorder/duration.mjs']):
    """Draws stored peaks (a flat line while there are none) and seeks the given audio element when clicked, dragged
    or moved by the keyboard, all in the browser, with no round trip."""

    def __init__(self, peaks: list[float], audio: ui.audio, *, duration_ms: int | None = None, label: str = '') -> None:
        super().__init__()
        self._props['peaks'] = peaks
        self._props['audioId'] = audio.id
        self._props['durationMs'] = duration_ms or 0
        if label:
            self._props['label'] = label
