"""One recording on /records: title (renamed in place), details, a seeking player, download and delete."""

from collections.abc import Awaitable, Callable

from nicegui import run, ui

from services.container import Services
from services.errors import AppError
from services.models import Recording, RecordingStatus, User
from services.recordings import MAX_TITLE_LENGTH

from .formatting import format_duration, format_local_time, format_size
from .frame import notify_error

STATUS_TEXT = {
    RecordingStatus.RECORDING: 'Still recording, or waiting for its last audio',
    RecordingStatus.FINALIZING: 'Saving…',
}


class RecordingCard:
    def __init__(
        self,
        services: Services,
        user: User,
        recording: Recording,
        *,
        time_zone: str | None,
        on_delete: Callable[[Recording], Awaitable[None]],
    ) -> None:
        self.services = services
        self.user = user
        self.recording = recording
        self.on_delete = on_delete
        with (
            ui.card()
            .classes('vr-card w-full')
            .mark('recording-item')
            .props(f'data-testid=recording-item data-recording-id={recording.id}')
        ):
            self.title_row = ui.row().classes('items-center w-full no-wrap gap-1')
            self.show_title()
            details = [
                format_local_time(recording.created_at, time_zone),
                format_duration(recording.duration_ms),
                format_size(recording.size_bytes),
            ]
            ui.label(' · '.join(details)).classes('text-caption vr-details')
            self.body()

    def body(self) -> None:
        recording = self.recording
        if recording.status == RecordingStatus.READY:
            (
                ui.audio(self.services.links.url(recording.id))
                .classes('w-full')
                .props(f'preload=metadata data-testid=audio-player aria-label="Play {_attr(recording.title)}"')
                .mark('audio-player')
            )
        elif recording.status == RecordingStatus.FAILED:
            ui.label(f'This recording could not be processed: {recording.error}').classes('text-negative')
        else:
            ui.label(STATUS_TEXT[recording.status]).classes('vr-pending').mark('recording-status')
        with ui.row().classes('gap-2 items-center'):
            if recording.status == RecordingStatus.READY:
                ui.link('Download', self.services.links.url(recording.id, download=True)).props(
                    'download data-testid=download-link'
                ).mark('download-link')
            ui.button('Delete', icon='delete', on_click=lambda: self.on_delete(self.recording)).props(
                'flat dense color=negative data-testid=delete-button'
            ).mark('delete-button')

    def show_title(self) -> None:
        self.title_row.clear()
        with self.title_row:
            ui.label(self.recording.title).classes('text-subtitle1 vr-recording-title').mark('recording-title')
            ui.button(icon='edit', on_click=self.edit_title).props(
                'flat dense round size=sm aria-label="Rename" data-testid=rename-button'
            ).mark('rename-button')

    def edit_title(self) -> None:
        self.title_row.clear()
        with self.title_row:
            title = (
                ui.input(value=self.recording.title)
                .classes('grow')
                .props(f'autofocus dense maxlength={MAX_TITLE_LENGTH} aria-label="Title" data-testid=rename-input')
                .mark('rename-input')
            )
            title.on('keydown.enter', lambda: self.save_title(title.value))
            title.on('keydown.escape', self.show_title)
            ui.button(icon='check', on_click=lambda: self.save_title(title.value)).props(
                'flat dense round aria-label="Save title" data-testid=rename-save'
            ).mark('rename-save')
            ui.button(icon='close', on_click=self.show_title).props('flat dense round aria-label="Cancel"')

    async def save_title(self, value: str | None) -> None:
        value = value or ''  # a cleared input reports None
        if value != self.recording.title:
            try:
                self.recording = await run.io_bound(
                    self.services.recordings.rename, user_id=self.user.id, recording_id=self.recording.id, title=value
                )
            except AppError as error:
                notify_error(error)
                return
        self.show_title()


def _attr(text: str) -> str:
    """Quasar props are parsed, not rendered: keep user text from closing the attribute."""
    return text.replace('"', '′').replace('\\', '/')[:80]
