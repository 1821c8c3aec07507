"""The waveform element: the Python half of `assets/waveform.js`."""

from nicegui import ui


class Waveform(ui.element, component='../assets/waveform.js'):
    """Draws stored peaks and seeks the given audio element when clicked (in the browser, no round trip)."""

    def __init__(self, peaks: list[float], audio: ui.audio) -> None:
        super().__init__()
        self._props['peaks'] = peaks
        self._props['audioId'] = audio.id
