"""One recording on /records: title (renamed in place), details, a seeking player, download and delete."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from nicegui import run, ui

from pages.formatting import format_duration, format_local_time, format_size
from pages.frame import notify_error
from pages.session import signed_in_only
from pages.transcript_panel import TranscriptPanel, search_snippet
from pages.waveform_element import Waveform
from services.audio.waveforms import peaks_of
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, RecordingStatus, User
from services.recordings.lifecycle import is_playable
from services.recordings.service import MAX_TITLE_LENGTH
from services.transcripts.service import SearchHit
from services.transcripts.shapes import TranscriptPublic

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
        transcript: TranscriptPublic | None = None,
        hit: SearchHit | None = None,
    ) -> None:
        self.services = services
        self.user = user
        self.recording = recording
        self.on_delete = on_delete
        self.transcript = transcript
        self.hit = hit  # set when the card answers a search: its snippet and where the match is spoken
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
        if is_playable(recording.status):
            player = (
                ui.audio(self.services.links.url(recording))
                .classes('w-full')
                .props(f'preload=metadata data-testid=audio-player aria-label="Play {_attr(recording.title)}"')
                .mark('audio-player')
            )
            if peaks := peaks_of(recording):
                Waveform(peaks, player).classes('w-full').props('data-testid=waveform').mark('waveform')
            if self.hit is not None:
                search_snippet(self.hit.snippet, self.hit.match_ms, player)
            if self.transcript is not None:
                TranscriptPanel(self.services, self.user.id, self.transcript, player, share=False)
        elif recording.status == RecordingStatus.FAILED:
            ui.label(f'This recording could not be processed: {recording.error}').classes('text-negative')
        else:
            ui.label(STATUS_TEXT[recording.status]).classes('vr-pending').mark('recording-status')
        with ui.row().classes('gap-2 items-center'):
            if is_playable(recording.status):
                ui.link('Download', self.services.links.url(recording, download=True)).props(
                    'download data-testid=download-link'
                ).mark('download-link')
                ui.button('MP3', icon='download', on_click=self.download_mp3).props(
                    'flat dense aria-label="Download as MP3" data-testid=mp3-button'
                ).mark('mp3-button')
                ui.button('Share', icon='share', on_click=self.share).props('flat dense data-testid=share-button').mark(
                    'share-button'
                )
            ui.button('Delete', icon='delete', on_click=lambda: self.on_delete(self.recording)).props(
                'flat dense color=negative data-testid=delete-button'
            ).mark('delete-button')
        self.progress_area = ui.row().classes('w-full')

    @signed_in_only
    async def download_mp3(self) -> None:
        """The MP3 is made once, on the encoder pool (awaited, holding no thread); a bar shows how far it got, then the
        browser downloads it."""
        done = {'fraction': 0.0}
        self.progress_area.clear()
        with self.progress_area:
            bar = ui.linear_progress(value=0, show_value=False).classes('w-full').mark('mp3-progress')
            ticker = ui.timer(0.2, lambda: bar.set_value(done['fraction']))
        try:
            recording = await self.services.exports.await_mp3(
                user_id=self.user.id,
                recording_id=self.recording.id,
                progress=lambda fraction: done.update(fraction=fraction),
            )
        except AppError as error:
            notify_error(error)
            return
        finally:
            ticker.cancel()
            self.progress_area.clear()
        if recording is not None:
            ui.download(self.services.links.url(recording, download=True, mp3=True))

    @signed_in_only
    async def share(self) -> None:
        with ui.dialog() as dialog, ui.card().classes('w-96'):
            ui.label(f'Share “{self.recording.title}”').classes('text-h6')
            ui.label('Anyone with the link can listen until it expires or you stop sharing.').classes('text-caption')
            links = ui.column().classes('w-full')
            lifetime = (
                ui.select({1: '1 day', 7: '7 days', 30: '30 days'}, value=7, label='Link works for')
                .classes('w-40')
                .mark('share-lifetime')
            )
            with ui.row():
                ui.button('Create link', on_click=lambda: self.create_share(links, lifetime.value)).props(
                    'data-testid=create-share'
                ).mark('create-share')
                ui.button('Close', on_click=dialog.close).props('flat')
        await self.show_shares(links)
        dialog.open()

    async def show_shares(self, links: ui.column) -> None:
        shares = await run.io_bound(self.services.shares.active, user_id=self.user.id, recording_id=self.recording.id)
        links.clear()
        base = str(links.client.request.base_url).rstrip('/')  # not ui.context: clear() may delete the caller
        with links:
            for share in shares or []:
                url = f'{base}/share/{share.id}'
                with ui.row().classes('items-center w-full no-wrap'):
                    ui.input(value=url).props('readonly dense aria-label="Share link" data-testid=share-url').classes(
                        'grow'
                    ).mark('share-url')
                    ui.button(icon='content_copy', on_click=lambda url=url: ui.clipboard.write(url)).props(
                        'flat dense round aria-label="Copy link"'
                    )
                    ui.button(icon='link_off', on_click=lambda share=share: self.revoke_share(links, share.id)).props(
                        'flat dense round aria-label="Stop sharing" data-testid=revoke-share'
                    ).mark('revoke-share')

    @signed_in_only
    async def create_share(self, links: ui.column, days: int) -> None:
        try:
            await run.io_bound(
                self.services.shares.create,
                user_id=self.user.id,
                recording_id=self.recording.id,
                lifetime=timedelta(days=days),
            )
        except AppError as error:
            notify_error(error)
            return
        await self.show_shares(links)

    @signed_in_only
    async def revoke_share(self, links: ui.column, share_id: uuid.UUID) -> None:
        await run.io_bound(
            self.services.shares.revoke, user_id=self.user.id, recording_id=self.recording.id, share_id=share_id
        )
        await self.show_shares(links)

    def show_title(self) -> None:
        self.title_row.clear()
        with self.title_row:
            ui.label(self.recording.title).classes('text-subtitle1 vr-recording-title').mark('recording-title')
            ui.button(icon='edit', on_click=self.edit_title).props(
                'flat dense round size=sm aria-label="Rename" data-testid=rename-button'
            ).mark('rename-button')

    @signed_in_only
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

    @signed_in_only
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
