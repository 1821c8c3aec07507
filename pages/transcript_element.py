"""The transcript element: the Python half of `assets/transcript.js`."""

from nicegui import ui

from services.transcripts.shapes import SegmentPublic


class TranscriptView(ui.element, component='../assets/transcript.js', dependencies=['../assets/recorder/duration.mjs']):
    """Shows the words; a click plays the given audio element from that word, all in the browser."""

    def __init__(self, segments: list[SegmentPublic], audio: ui.audio) -> None:
        super().__init__()
        # compact: [[segment start, [[word start, word], ...]], ...] keeps an hour's transcript small on the wire
        self._props['segments'] = [[s.start_ms, [[w.start_ms, w.word] for w in s.words]] for s in segments]
        self._props['audioId'] = audio.id
