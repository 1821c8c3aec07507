"""The recorder element: the Python half of `assets/recorder.js`, whose modules live in `assets/recorder/`."""

import uuid
from collections.abc import Callable
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from services.core.models import RecordingPublic


class AudioRecorder(
    ui.element,
    component='../assets/recorder.js',
    # Registered as libraries, not as `esm`: one glob gives every module a URL under one folder whose name changes
    # with the newest file's time, so a module edited in place is never served stale from an immutable cache.
    dependencies=['../assets/recorder/*.mjs'],
):
    """Records in the browser and streams chunks over the `/vr` audio channel.

    With `recover_only` it records nothing and only uploads what an earlier page of this browser left behind.
    """

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        upload_token: str,
        max_chunk_bytes: int,
        timeslice_ms: int,
        max_recording_s: int = 4 * 3600,
        recover_only: bool = False,
        on_started: Callable[[dict[str, Any]], Any] | None = None,
        on_saved: Callable[[dict[str, Any]], Any] | None = None,
        on_recovered: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self._props.update(
            userId=str(user_id),  # only this user's leftovers in the browser are recovered
            uploadToken=upload_token,
            maxChunkBytes=max_chunk_bytes,
            timesliceMs=timeslice_ms,
            maxRecordingMs=max_recording_s * 1000,
            recoverOnly=recover_only,
        )
        for name, handler in (('started', on_started), ('saved', on_saved), ('recovered', on_recovered)):
            if handler:
                self.on(name, lambda event, name=name, handler=handler: deliver(name, event.args, handler))

    def js_call(self, method: str) -> str:
        """A click handler that runs in the browser, so the control works even while the websocket is down."""
        return f'() => getElement({self.id}).{method}()'


def deliver(name: str, args: Any, handler: Callable[[Any], Any]) -> Any:
    """Hand on what the browser said, checked where it arrives: the page's websocket carries whatever a client
    sends, and a handler that fails on it logs a traceback. `saved` and `recovered` name a recording as the audio
    channel answered it; anything else in their place is dropped."""
    if name not in ('saved', 'recovered'):
        return handler(args)
    try:
        recording = RecordingPublic.model_validate(args)
    except ValidationError:
        return None
    return handler(recording.model_dump(mode='json'))
