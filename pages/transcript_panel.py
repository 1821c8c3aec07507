"""A recording's transcript on /records and the share page: its state in plain words, the clickable text, its
language, the files to download, "Transcribe again" (in a language of your choice), and a search hit's highlighted
snippet."""

import html
import uuid
from collections.abc import Callable
from typing import Literal

from nicegui import run, ui

from pages.formatting import language_choices
from pages.frame import notify_error
from pages.recording_actions import action_button
from pages.session import signed_in_only
from pages.transcript_element import TranscriptView
from services.container import Services
from services.core.errors import AppError
from services.core.models import TranscriptState
from services.transcripts.languages import language_name
from services.transcripts.search import SnippetPiece
from services.transcripts.shapes import TranscriptPublic

POLL_S = 3.0
FILE_KINDS: tuple[Literal['txt', 'srt', 'vtt'], ...] = ('txt', 'srt', 'vtt')
FILE_NAMES = {'txt': 'Text (.txt)', 'srt': 'Subtitles (.srt)', 'vtt': 'Web subtitles (.vtt)'}


def play_from_js(player: ui.audio, ms: int) -> str:
    """A click handler that seeks and plays in the browser, with no round trip."""
    return (
        f'() => {{ const a = document.querySelector("#c{player.id}"); if (!a) return; '
        f'const go = () => {{ a.currentTime = {ms / 1000:.3f}; a.play().catch(() => {{}}); }}; '
        'if (a.readyState >= 1) go(); '
        'else { a.addEventListener("loadedmetadata", go, {once: true}); a.load(); } }'
    )


def search_snippet(snippet: list[SnippetPiece], match_ms: int | None, player: ui.audio) -> None:
    """The words around the match, the matching ones marked; escaped here, so user text is never markup."""
    markup = ''.join(f'<mark>{html.escape(p.text)}</mark>' if p.match else html.escape(p.text) for p in snippet)
    with ui.row().classes('items-center w-full no-wrap gap-2'):
        ui.html(markup, sanitize=False).classes('vr-snippet text-body2 grow').mark('search-snippet')
        if match_ms is not None:
            ui.button(icon='play_arrow').props(
                'flat dense round aria-label="Play from the match" data-testid=play-match'
            ).on('click', js_handler=play_from_js(player, match_ms)).mark('play-match')


def short_state(transcript: TranscriptPublic) -> str:
    """The transcript's state in a few words, for a recording's row."""
    state = transcript.state
    if state == TranscriptState.QUEUED:
        return 'Transcript waiting'
    if state == TranscriptState.TRANSCRIBING:
        return f'Transcribing {round(transcript.progress * 100)} %'
    if state == TranscriptState.FAILED:
        return 'No transcript'
    if state == TranscriptState.DONE:
        return 'Transcript' if transcript.segments else 'No speech heard'
    return ''


class TranscriptPanel:
    """Shows the state until the transcript is done (looking again every few seconds), then the transcript."""

    def __init__(
        self,
        services: Services,
        user_id: uuid.UUID,
        transcript: TranscriptPublic,
        player: ui.audio,
        *,
        share: bool,
        on_change: Callable[[TranscriptPublic], None] | None = None,
    ) -> None:
        self.services = services
        self.on_change = on_change  # the row's one-line state follows the panel's
        self.user_id = user_id
        self.transcript = transcript
        self.player = player
        self.share = share  # the public page: no downloads, no polling with the owner's id
        self.area = ui.column().classes('w-full gap-1 vr-transcript-panel').mark('transcript-panel')
        self.poller = ui.timer(POLL_S, self.look_again, active=self.pending)
        self.show()

    @property
    def pending(self) -> bool:
        return self.transcript.state in (TranscriptState.QUEUED, TranscriptState.TRANSCRIBING) and not self.share

    def show(self) -> None:
        self.area.clear()
        with self.area:
            state, transcript = self.transcript.state, self.transcript
            if state == TranscriptState.OFF or (self.share and state != TranscriptState.DONE):
                return
            if state == TranscriptState.QUEUED:
                ui.label('Transcript: waiting for its turn').classes('text-caption').mark('transcript-state')
            elif state == TranscriptState.TRANSCRIBING:
                percent = round(transcript.progress * 100)
                ui.label(f'Transcribing… {percent} %').classes('text-caption').mark('transcript-state')
            elif state == TranscriptState.FAILED:
                ui.label(f'No transcript: {transcript.error or "it could not be made"}').classes(
                    'text-caption text-negative'
                ).mark('transcript-state')
            if transcript.segments:
                TranscriptView(transcript.segments, self.player).classes('w-full').mark('transcript')
            elif state == TranscriptState.DONE:
                ui.label('Transcript: no speech was heard').classes('text-caption').mark('transcript-state')
            if not self.share:
                self.actions()
            elif transcript.language:
                self.language_label()

    def language_label(self) -> None:
        ui.label(language_name(self.transcript.language)).classes('text-caption vr-transcript-language').props(
            'data-testid=transcript-language'
        ).mark('transcript-language')

    def actions(self) -> None:
        """The transcript's language, its files (one button, a menu of the three kinds) and "Transcribe again", in
        the style of the recording's other actions."""
        with ui.row().classes('gap-1 items-center'):
            if self.transcript.segments:
                if self.transcript.language:
                    self.language_label()
                files = action_button('text_snippet', 'Download the transcript', 'transcript-download', None)
                with files, ui.menu():
                    for kind in FILE_KINDS:
                        ui.menu_item(FILE_NAMES[kind], on_click=lambda kind=kind: self.download(kind)).props(
                            f'data-testid=transcript-{kind}'
                        ).mark(f'transcript-{kind}')
            if not self.pending:  # a job waiting or under way is not asked for again
                action_button('translate', 'Transcribe again', 'transcribe-again', self.ask_again)

    @signed_in_only
    async def ask_again(self) -> None:
        """Which language to hear the recording in: the one it was heard in is marked; '' is the user's default, or
        detection when there is none."""
        user = await run.io_bound(self.services.users.get, self.user_id)
        unset = f'Your language ({language_name(user.language)})' if user and user.language else 'Detect the language'
        with ui.dialog() as dialog, ui.card().classes('w-96'):
            ui.label('Transcribe again').classes('text-h6')
            ui.label('The words are heard again from the audio, in the language you choose.').classes('text-caption')
            language = (
                ui.select(
                    language_choices(unset, self.transcript.language), value='', label='Language', with_input=True
                )
                .classes('w-full')
                .props('data-testid=transcribe-language')
                .mark('transcribe-language')
            )
            with ui.row():
                ui.button('Transcribe again', on_click=lambda: dialog.submit(language.value or '')).props(
                    'data-testid=transcribe-again-confirm'
                ).mark('transcribe-again-confirm')
                ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat')
        chosen = await dialog
        if chosen is not None:
            await self.transcribe_again(chosen or None)

    async def transcribe_again(self, language: str | None) -> None:
        try:
            await self.services.rate_limits.transcribe_again.hit_async(self.user_id)
            fresh = await run.io_bound(
                self.services.transcripts.transcribe_again,
                user_id=self.user_id,
                recording_id=self.transcript.recording_id,
                language=language,
            )
        except AppError as error:
            notify_error(error)
            return
        if fresh is not None:
            self.changed(fresh)

    @signed_in_only
    async def download(self, kind: Literal['txt', 'srt', 'vtt']) -> None:
        try:
            file = await run.io_bound(
                self.services.transcripts.file,
                user_id=self.user_id,
                recording_id=self.transcript.recording_id,
                kind=kind,
            )
        except AppError as error:
            notify_error(error)
            return
        if file is not None:
            ui.download.content(file.content.encode(), file.name, file.media_type)

    async def look_again(self) -> None:
        try:
            fresh = await run.io_bound(
                self.services.transcripts.get, user_id=self.user_id, recording_id=self.transcript.recording_id
            )
        except AppError:
            return  # deleted meanwhile, or the database is busy: the next look may tell
        if fresh is None:
            return
        changed = (fresh.state, round(fresh.progress, 2)) != (self.transcript.state, round(self.transcript.progress, 2))
        if changed:
            self.changed(fresh)
        else:
            self.transcript = fresh
            self.poller.active = self.pending

    def changed(self, fresh: TranscriptPublic) -> None:
        self.transcript = fresh
        self.poller.active = self.pending
        self.show()
        if self.on_change is not None:
            self.on_change(fresh)
