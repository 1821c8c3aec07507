"""A recording's transcript on /records and the share page: its state in plain words, the clickable text, the
files to download, and a search hit's highlighted snippet."""

import html
import uuid
from typing import Literal

from nicegui import run, ui

from pages.frame import notify_error
from pages.session import signed_in_only
from pages.transcript_element import TranscriptView
from services.container import Services
from services.core.errors import AppError
from services.core.models import TranscriptState
from services.transcripts.search import SnippetPiece
from services.transcripts.shapes import TranscriptPublic

POLL_S = 3.0
FILE_KINDS: tuple[Literal['txt', 'srt', 'vtt'], ...] = ('txt', 'srt', 'vtt')


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
        ui.html(f'… {markup} …', sanitize=False).classes('vr-snippet text-body2 grow').mark('search-snippet')
        if match_ms is not None:
            ui.button(icon='play_arrow').props(
                'flat dense round aria-label="Play from the match" data-testid=play-match'
            ).on('click', js_handler=play_from_js(player, match_ms)).mark('play-match')


class TranscriptPanel:
    """Shows the state until the transcript is done (looking again every few seconds), then the transcript."""

    def __init__(
        self, services: Services, user_id: uuid.UUID, transcript: TranscriptPublic, player: ui.audio, *, share: bool
    ) -> None:
        self.services = services
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
                if not self.share:
                    self.downloads()
            elif state == TranscriptState.DONE:
                ui.label('Transcript: no speech was heard').classes('text-caption').mark('transcript-state')

    def downloads(self) -> None:
        with ui.row().classes('gap-1 items-center'):
            ui.label('Transcript:').classes('text-caption')
            for kind in FILE_KINDS:
                ui.button(f'.{kind}', on_click=lambda kind=kind: self.download(kind)).props(
                    f'flat dense no-caps data-testid=transcript-{kind}'
                ).mark(f'transcript-{kind}')

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
        self.transcript = fresh
        self.poller.active = self.pending
        if changed:
            self.show()
