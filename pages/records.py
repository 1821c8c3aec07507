"""/records: the user's recordings, newest first, each playable, renamable, downloadable and deletable."""

from fastapi.responses import RedirectResponse
from nicegui import app, run, ui

from services.container import Services
from services.errors import AppError
from services.models import Recording, RecordingStatus, User
from services.recordings import MAX_TITLE_LENGTH

from .formatting import format_duration, format_local_time, format_size
from .frame import frame, notify_error, signed_in_user

PAGE_SIZE = 50
STATUS_TEXT = {
    RecordingStatus.RECORDING: 'Still recording, or waiting for its last audio',
    RecordingStatus.FINALIZING: 'Saving…',
}


def create(services: Services) -> None:
    @ui.page('/records')
    async def records_page() -> RedirectResponse | None:
        user = await signed_in_user(services)
        if user is None:
            return RedirectResponse('/onboard')
        with frame('Your recordings', user):
            await RecordList(services, user).show()
        return None


class RecordList:
    def __init__(self, services: Services, user: User) -> None:
        self.services = services
        self.user = user
        self.time_zone = app.storage.user.get('time_zone')
        self.poller = ui.timer(3.0, self.show.refresh, active=False, immediate=False)

    @ui.refreshable_method
    async def show(self) -> None:
        try:
            recordings = await run.io_bound(self.services.recordings.list, user_id=self.user.id, limit=PAGE_SIZE)
        except AppError as error:
            ui.label(f'Your recordings could not be loaded: {error.message}').classes('text-negative')
            return
        if recordings is None:  # the app is shutting down
            return
        self.poller.active = any(r.status in STATUS_TEXT for r in recordings)
        if not recordings:
            with ui.column().classes('vr-empty items-center w-full').mark('empty-state'):
                ui.label('No recordings yet.').classes('text-h6')
                ui.button('Make your first recording', on_click=lambda: ui.navigate.to('/recorder'))
            return
        for recording in recordings:
            self.card(recording)

    def card(self, recording: Recording) -> None:
        with (
            ui.card()
            .classes('vr-card w-full')
            .mark('recording-item')
            .props(f'data-testid=recording-item data-recording-id={recording.id}')
        ):
            ui.label(recording.title).classes('text-subtitle1 vr-recording-title').mark('recording-title')
            details = [
                format_local_time(recording.created_at, self.time_zone),
                format_duration(recording.duration_ms),
                format_size(recording.size_bytes),
            ]
            ui.label(' · '.join(details)).classes('text-caption vr-details')
            if recording.status == RecordingStatus.READY:
                url = self.services.links.url(recording.id)
                ui.audio(url).props('preload=metadata data-testid=audio-player').classes('w-full').mark('audio-player')
            elif recording.status == RecordingStatus.FAILED:
                ui.label(f'This recording could not be processed: {recording.error}').classes('text-negative')
            else:
                ui.label(STATUS_TEXT[recording.status]).classes('vr-pending').mark('recording-status')
            with ui.row().classes('gap-2'):
                if recording.status == RecordingStatus.READY:
                    download = self.services.links.url(recording.id, download=True)
                    ui.link('Download', download).props('download data-testid=download-link').mark('download-link')
                ui.button('Rename', icon='edit', on_click=lambda r=recording: self.rename(r)).props(
                    'flat dense data-testid=rename-button'
                ).mark('rename-button')
                ui.button('Delete', icon='delete', on_click=lambda r=recording: self.delete(r)).props(
                    'flat dense color=negative data-testid=delete-button'
                ).mark('delete-button')

    async def rename(self, recording: Recording) -> None:
        with ui.dialog() as dialog, ui.card():
            title = (
                ui.input('Title', value=recording.title)
                .props(f'autofocus maxlength={MAX_TITLE_LENGTH} data-testid=rename-input')
                .classes('w-80')
                .mark('rename-input')
            )
            with ui.row():
                ui.button('Cancel', on_click=dialog.close).props('flat')
                ui.button('Save', on_click=lambda: dialog.submit(title.value)).props('data-testid=rename-save').mark(
                    'rename-save'
                )
            title.on('keydown.enter', lambda: dialog.submit(title.value))
        new_title = await dialog
        if new_title is None or new_title == recording.title:
            return
        try:
            await run.io_bound(
                self.services.recordings.rename, user_id=self.user.id, recording_id=recording.id, title=new_title
            )
        except AppError as error:
            notify_error(error)
            return
        self.show.refresh()

    async def delete(self, recording: Recording) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(f'Delete “{recording.title}”? This cannot be undone.')
            with ui.row():
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat')
                ui.button('Delete', on_click=lambda: dialog.submit(True)).props(
                    'color=negative data-testid=confirm-delete'
                ).mark('confirm-delete')
        if not await dialog:
            return
        try:
            await run.io_bound(self.services.recordings.delete, user_id=self.user.id, recording_id=recording.id)
        except AppError as error:
            notify_error(error)
            return
        ui.notify('Recording deleted')
        self.show.refresh()
