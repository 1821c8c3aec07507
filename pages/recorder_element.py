"""The recorder element: the Python half of `assets/recorder.js`."""

import uuid
from collections.abc import Callable
from typing import Any

from nicegui import ui


class AudioRecorder(ui.element, component='../assets/recorder.js'):
    """Records in the browser and streams chunks to the server; the server learns whose audio it is from here."""

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        max_chunk_bytes: int,
        timeslice_ms: int,
        on_started: Callable[[dict[str, Any]], Any] | None = None,
        on_saved: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.user_id = user_id
        self.state = 'idle'
        self._props['elementId'] = self.id
        self._props['maxChunkBytes'] = max_chunk_bytes
        self._props['timesliceMs'] = timeslice_ms
        self.on('state', lambda event: setattr(self, 'state', event.args['state']))
        if on_started:
            self.on('started', lambda event: on_started(event.args))
        if on_saved:
            self.on('saved', lambda event: on_saved(event.args))

    def js_call(self, method: str) -> str:
        """A click handler that runs in the browser, so the control works even while the websocket is down."""
        return f'() => getElement({self.id}).{method}()'
