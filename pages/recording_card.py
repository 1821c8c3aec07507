"""One recording on /records as a row: title, date, length and transcript state on one line; the row opens (click,
Enter, Space) to its player, waveform, transcript and actions. A star and tags sit on the row once the service has
them."""

import uuid
from collections.abc import Awaitable, Callable

from nicegui import background_tasks, run, ui
from nicegui.elements.mixins.text_element import TextElement

from pages.formatting import format_duration, format_local_time, format_size
from pages.frame import notify_error
from pages.player_element import AudioPlayer
from pages.recording_actions import RecordingActions
from pages.recording_labels import Labels
from pages.session import signed_in_only
from pages.title_editor import TitleEditor
from pages.transcript_panel import TranscriptPanel, search_snippet, short_state
from pages.waveform_element import Waveform
from services.audio.waveforms import peaks_of
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, RecordingStatus, TranscriptState, User
from services.recordings.lifecycle import is_playable
from services.transcripts.service import SearchHit
from services.transcripts.shapes import TranscriptPublic

STATUS_TEXT = {
    RecordingStatus.RECORDING: 'Still recording, or waiting for its last audio',
    RecordingStatus.FINALIZING: 'Saving…',
}


class Span(TextElement):
    """Text inside a button must be phrasing content: a span, not the div of ui.label."""

    def __init__(self, text: str) -> None:
        super().__init__(tag='span', text=text)


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
        opened: bool = False,
        on_toggle: Callable[[uuid.UUID, bool], None] | None = None,
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.services = services
        self.user = user
        self.recording = recording
        self.time_zone = time_zone
        self.on_delete = on_delete
        self.transcript = transcript
        self.hit = hit  # set when the row answers a search: its snippet and where the match is spoken
        self.opened = opened
        self.on_toggle = on_toggle
        self.on_change = on_change  # a star or a tag changed: the filters' chips may change
        self.body_id = f'vr-body-{recording.id}'
        self.labels = Labels(services, user, lambda: self.recording, self.labels_changed)
        with (
            ui.element('div')
            .classes('vr-card vr-row w-full' + (' vr-row--open' if opened else ''))
            .mark('recording-item')
            .props(f'data-testid=recording-item data-recording-id={recording.id}') as self.root
        ):
            with ui.element('div').classes('vr-row-line'):
                self.title_area = ui.element('div').classes('vr-row-main')
                self.show_line()
                self.star_area = ui.element('div').classes('vr-row-star')
                with self.star_area:
                    self.labels.star()
            if self.hit is not None:
                self.player_slot = ui.element('div').classes('vr-row-snippet')
            with ui.element('div').classes('vr-row-body').props(f'id={self.body_id}'):
                self.body()

    def show_line(self) -> None:
        """The row's one line, a button that opens and closes it."""
        recording = self.recording
        self.title_area.clear()
        expanded = 'true' if self.opened else 'false'
        with self.title_area:
            self.toggle_button = (
                ui.element('button')
                .classes('vr-row-toggle')
                .props(f'type=button aria-expanded={expanded} aria-controls={self.body_id}')
                .props('data-testid=recording-toggle')
                .mark('recording-toggle')
                .on('click', self.toggle)
            )
        with self.toggle_button:
            ui.icon('expand_more').classes('vr-chevron').props('aria-hidden=true')
            Span(recording.title).classes('vr-recording-title').mark('recording-title')
            for tag in (recording.tags or [])[:3]:
                Span(tag).classes('vr-tag-mini')
            self.state_label = Span(self.state_text()).classes('vr-row-state').mark('row-state')
            when = format_local_time(recording.created_at, self.time_zone)
            length = format_duration(recording.duration_ms)
            details = length if when in recording.title else f'{when} · {length}'  # a title that is its date: once
            Span(details).classes('vr-details').mark('row-details')

    def state_text(self) -> str:
        recording = self.recording
        if recording.status == RecordingStatus.FAILED:
            return 'Could not be processed'
        if not is_playable(recording.status):
            return STATUS_TEXT[recording.status]
        return short_state(self.transcript) if self.transcript is not None else ''

    def toggle(self) -> None:
        self.opened = not self.opened
        self.root.classes(add='vr-row--open') if self.opened else self.root.classes(remove='vr-row--open')
        self.toggle_button.props(f'aria-expanded={"true" if self.opened else "false"}')
        if self.on_toggle is not None:
            self.on_toggle(self.recording.id, self.opened)

    def body(self) -> None:
        recording = self.recording
        player = None
        if is_playable(recording.status):
            player = self.player()
        elif recording.status == RecordingStatus.FAILED:
            ui.label(f'This recording could not be processed: {recording.error}').classes('text-negative')
        else:
            ui.label(STATUS_TEXT[recording.status]).classes('vr-pending').mark('recording-status')
        if player is not None and self.transcript is not None:
            TranscriptPanel(
                self.services, self.user.id, self.transcript, player, share=False, on_change=self.transcript_changed
            )
        self.tags_area = ui.element('div')
        with self.tags_area:
            self.labels.tag_editor()
        RecordingActions(self.services, self.user, self, playable=player is not None)
        ui.label(format_size(recording.size_bytes)).classes('text-caption vr-size').mark('recording-size')

    def player(self) -> ui.audio:
        """A hidden <audio> with our controls and the waveform as its one scrubber."""
        recording = self.recording
        audio = (
            ui.audio(self.services.links.url(recording), controls=False)
            .props(f'preload=metadata data-testid=audio-player aria-label="{_attr(recording.title)}"')
            .mark('audio-player')
        )
        peaks = peaks_of(recording)
        waveform = Waveform(
            peaks or [], audio, duration_ms=recording.duration_ms, label=f'Seek in {recording.title}'
        ).classes('w-full')
        if peaks:  # the marker says the waveform is drawn: until then the seek bar is a flat line
            waveform.props('data-testid=waveform').mark('waveform')
        AudioPlayer(
            audio,
            duration_ms=recording.duration_ms,
            lifetime_s=self.services.settings.audio_url_expiry_s,
            fresh_url=self.fresh_url,
        ).mark('player')
        if self.hit is not None:
            with self.player_slot:
                search_snippet(self.hit.snippet, self.hit.match_ms, audio)
        return audio

    @signed_in_only
    async def fresh_url(self) -> str:
        """A new signed URL for a page left open past the old one's lifetime (only while its session holds)."""
        return self.services.links.url(self.recording)

    def transcript_changed(self, transcript: TranscriptPublic) -> None:
        self.transcript = transcript
        self.state_label.set_text(self.state_text())
        if transcript.state == TranscriptState.DONE and not self.recording.named:
            background_tasks.create(self.take_auto_title(), name='auto title')

    async def take_auto_title(self) -> None:
        """A transcript names a recording the user did not (services/recordings/titles.py): the row shows it at once."""
        try:
            fresh = await run.io_bound(
                self.services.recordings.get, user_id=self.user.id, recording_id=self.recording.id
            )
        except AppError:
            return  # deleted meanwhile: the list will say so
        if fresh is not None and fresh.title != self.recording.title:
            self.recording = fresh
            self.show_line()

    async def labels_changed(self, recording: Recording) -> None:
        self.recording = recording
        self.show_line()
        self.star_area.clear()
        with self.star_area:
            self.labels.star()
        self.tags_area.clear()
        with self.tags_area:
            self.labels.tag_editor()
        if self.on_change is not None:
            await self.on_change()

    def edit_title(self) -> None:
        """The row's line becomes the title field until it is saved or cancelled."""
        self.title_area.clear()
        with self.title_area:
            TitleEditor(self.recording.title, on_save=self.save_title, on_cancel=self.show_line)

    async def save_title(self, value: str) -> bool:
        if value != self.recording.title:
            try:
                renamed = await run.io_bound(
                    self.services.recordings.rename, user_id=self.user.id, recording_id=self.recording.id, title=value
                )
            except AppError as error:
                notify_error(error)
                return False
            if renamed is None:  # the app is shutting down
                return False
            self.recording = renamed
        self.show_line()
        return True


def _attr(text: str) -> str:
    """Quasar props are parsed, not rendered: keep user text from closing the attribute."""
    return text.replace('"', '′').replace('\\', '/')[:80]
