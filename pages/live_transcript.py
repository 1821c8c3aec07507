"""The live transcript under the recorder's timer: the words as they are heard, then the full transcript after Stop.

The words come from the database (services/transcripts/live_store.py), written by the live worker from the chunks the
server already stores, so they reach this page whichever process or instance heard them. The page reads what is new
every `VR_LIVE_POLL_S` while a recording of this page is being made or its full transcript is awaited, and only
while its sign-in holds; a recording of someone else is never read (the store checks the owner).
"""

import uuid
from typing import Any

from nicegui import run, ui

from pages.session import PageSession
from services.container import Services
from services.core.errors import AppError
from services.core.models import LiveState, TranscriptState

BUSY = 'Live transcript paused: the server is busy. The full transcript follows after you stop.'
STOPPED = 'Live transcript stopped for this recording. The full transcript follows after you stop.'
LISTENING = 'Listening…'
DRAFT = 'Live draft: the full transcript replaces it when it is ready.'
OFF = 'Live transcript is off. The full transcript follows after you stop.'


class LiveTranscriptView:
    def __init__(self, services: Services, session: PageSession) -> None:
        self.services, self.session = services, session
        self.recording_id: uuid.UUID | None = None
        self.after = -1  # the seq of the last piece shown
        self.words: list[str] = []
        self.saved = False
        wanted = services.settings.transcribe and services.settings.live_transcripts > 0
        with ui.column().classes('w-full gap-1 vr-live').mark('live-panel') as self.panel:
            self.toggle = (
                ui.switch('Live transcript', value=session.user.live_transcript, on_change=self.toggled)
                .props('data-testid=live-toggle')
                .mark('live-toggle')
            )
            self.state = (
                ui.label('').classes('text-caption vr-live-state').props('data-testid=live-state').mark('live-state')
            )
            self.text = (
                ui.label('')
                .classes('vr-live-text')
                .props('data-testid=live-transcript aria-live=polite tabindex=0')  # it scrolls on a phone
                .mark('live-transcript')
            )
        self.panel.set_visibility(wanted)
        self.timer = ui.timer(services.settings.live_poll_s, self.poll, active=False)

    async def started(self, info: Any) -> None:
        """A recording of this page exists now (the recorder's `started` event names it)."""
        try:
            recording_id = uuid.UUID(str(info.get('recording_id'))) if isinstance(info, dict) else None
        except ValueError:
            recording_id = None
        if recording_id is None or not self.panel.visible:
            return
        self.recording_id, self.after, self.words, self.saved = recording_id, -1, [], False
        self.text.set_text('')
        if not self.toggle.value:
            self.state.set_text(OFF)
            return
        asked = await self._call(self.services.live.start, user_id=self.session.user.id, recording_id=recording_id)
        self.state.set_text(LISTENING if asked else '')
        self.timer.activate()

    def saved_recording(self) -> None:
        """Stopped and saved: the live words stay as a draft until the full transcript is made."""
        self.saved = True
        if self.recording_id is not None and self.timer.active:
            self.state.set_text(DRAFT if self.words else '')

    async def toggled(self, event: Any) -> None:
        wanted = bool(event.value)
        await self._call(self.services.users.change_profile, self.session.user.id, {'live_transcript': wanted})
        self.session.user.live_transcript = wanted
        if self.recording_id is None or self.saved:
            return
        if wanted:
            await self.started({'recording_id': str(self.recording_id)})
        else:
            await self._call(self.services.live.stop, user_id=self.session.user.id, recording_id=self.recording_id)
            self.state.set_text(OFF)

    async def poll(self) -> None:
        if self.recording_id is None or self.session.left or not await self.session.still_valid(fresh=False):
            self.timer.deactivate()
            return
        if self.saved:
            await self._replace_with_the_full_transcript(self.recording_id)
            return
        live = await self._call(
            self.services.live.words, user_id=self.session.user.id, recording_id=self.recording_id, after=self.after
        )
        if live is None:
            return
        for seq, text in live.pieces:
            self.after = seq
            self.words.append(text.strip())
        if live.pieces:
            self.text.set_text(' '.join(self.words))
        if live.busy:
            self.state.set_text(BUSY)
        elif live.state == LiveState.ENDED:
            self.state.set_text(STOPPED if self.toggle.value else OFF)
        elif self.words:
            self.state.set_text('')

    async def _replace_with_the_full_transcript(self, recording_id: uuid.UUID) -> None:
        transcript = await self._call(
            self.services.transcripts.get, user_id=self.session.user.id, recording_id=recording_id
        )
        if transcript is None or transcript.state in (TranscriptState.QUEUED, TranscriptState.TRANSCRIBING):
            return
        self.timer.deactivate()
        if transcript.state == TranscriptState.DONE and transcript.segments:
            self.text.set_text(' '.join(segment.text.strip() for segment in transcript.segments))
            self.state.set_text('Transcript')
        else:
            self.state.set_text('')

    async def _call(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """A service call off the event loop; a refusal or an outage leaves the page as it is (None)."""
        try:
            return await run.io_bound(action, *args, **kwargs)
        except AppError:
            return None
