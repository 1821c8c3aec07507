"""Importing audio files: the Import button, drag-and-drop anywhere on the page and a card per file, as one
component the records page mounts with `import_area(services, session, on_imported=...)`.

The browser half is `assets/importer.js`; it uploads each file as a recording (`services/recordings/imports.py`)
through the same audio channel and upload sessions as the recorder, so its modules come from `assets/recorder/`.
"""

import uuid
from collections.abc import Callable
from typing import Any

from nicegui import run, ui

from pages.recorder_element import deliver
from pages.session import PageSession
from services.container import Services
from services.core.errors import AppError
from services.recordings.lifecycle import is_playable


class AudioImporter(ui.element, component='../assets/importer.js', dependencies=['../assets/recorder/*.mjs']):
    def __init__(self, *, user_id: uuid.UUID, upload_token: str, max_chunk_bytes: int, max_import_bytes: int) -> None:
        super().__init__()
        self._props.update(
            userId=str(user_id),
            uploadToken=upload_token,
            maxChunkBytes=max_chunk_bytes,
            maxImportBytes=max_import_bytes,
        )


def import_area(
    services: Services, session: PageSession, *, on_imported: Callable[[dict[str, Any]], Any] | None = None
) -> AudioImporter:
    """The import button and cards; `on_imported` hears each recording once it is saved (e.g. to redraw a list)."""
    user = session.user
    settings = services.settings
    importer = AudioImporter(
        user_id=user.id,
        upload_token=session.upload_token(),
        max_chunk_bytes=settings.max_chunk_bytes,
        max_import_bytes=settings.max_import_bytes,
    ).mark('importer')
    if on_imported:
        importer.on('imported', lambda event: deliver('saved', event.args, on_imported))

    async def remove(event: Any) -> None:
        """A card removed in the browser: an unfinished import goes on the server too; a finished one stays."""
        try:
            recording = await run.io_bound(services.recordings.get, user_id=user.id, recording_id=uuid.UUID(event.args))
            if recording and recording.original_mime_type is not None and not is_playable(recording.status):
                await run.io_bound(services.recordings.delete, user_id=user.id, recording_id=recording.id)
        except (AppError, ValueError, TypeError):  # gone already, or not an id: nothing to remove
            return

    importer.on('remove', remove)
    return importer
