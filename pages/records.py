"""/records: the user's recordings, newest first, one row each: search and filters (starred, a tag), totals, more on
demand, delete with undo."""

import asyncio
import uuid
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import app, background_tasks, run, ui

from pages.account import account_section
from pages.formatting import format_duration
from pages.frame import frame, notify_error, signed_in_user
from pages.importer import import_area
from pages.record_filters import Filters
from pages.recorder_element import AudioRecorder
from pages.recording_card import STATUS_TEXT, RecordingCard
from pages.session import PageSession, current_session, signed_in_only, watch
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, User
from services.recordings.lifecycle import is_playable
from services.transcripts.service import SearchHit
from services.transcripts.shapes import TranscriptPublic

PAGE_SIZE = 20
UNDO_SECONDS = 6.0


def create(services: Services) -> None:
    @ui.page('/records')
    async def records_page() -> RedirectResponse | None:
        user = await signed_in_user(services)
        if user is None:
            return RedirectResponse('/onboard')
        session = watch(services, user)
        with frame('Your recordings', user):
            record_list = RecordList(services, user)
            # Imported files sit above the list: the button beside where they will appear, their cards under it.
            import_area(services, session, on_imported=lambda _: record_list.show.refresh()).move(target_index=0)
            await record_list.filters.show()
            await record_list.show()
            settings = services.settings
            AudioRecorder(
                user_id=user.id,
                upload_token=session.upload_token(),
                max_chunk_bytes=settings.max_chunk_bytes,
                timeslice_ms=settings.chunk_timeslice_ms,
                recover_only=True,
                on_recovered=record_list.recovered,
            ).classes('hidden').mark('recovery')
            account_section(services, user)
        return None


class RecordList:
    def __init__(self, services: Services, user: User) -> None:
        self.services = services
        self.user = user
        self.time_zone = app.storage.user.get('time_zone')
        self.search = ''
        self.limit = PAGE_SIZE
        self.hidden: dict[uuid.UUID, Recording] = {}  # deleted, but still undoable: out of the list and the totals
        self.opened: set[uuid.UUID] = set()  # rows the user opened stay open when the list is drawn again
        self.pending_deletes: dict[uuid.UUID, asyncio.Task[None]] = {}
        with ui.row().classes('vr-list-tools w-full items-center'):
            self.search_input = (
                ui.input(placeholder='Search titles and what was said', on_change=self.search_for)
                .props('dense clearable debounce=300 aria-label="Search titles and transcripts"')
                .props('data-testid=search-input')
                .classes('w-64')
                .mark('search-input')
            )
            self.filters = Filters(services, user, on_change=self.filter_changed)
            self.totals = ui.label().classes('text-caption').props('data-testid=totals').mark('totals')
        self.undo_area = ui.row().classes('w-full')
        self.shown: set[tuple[uuid.UUID, str]] = set()  # the rows drawn and their states, for the poller
        self.poller = ui.timer(3.0, self.look_again, active=False, immediate=False)

    def recovered(self, recording: dict[str, Any]) -> None:
        ui.notify(f'Recovered recording “{recording["title"]}”', type='positive')
        self.show.refresh()

    async def search_for(self, event: Any) -> None:
        """The text is taken before the session check awaits, so quick edits end on the last one typed."""
        self.search = event.value or ''
        self.limit = PAGE_SIZE
        await self.refresh_while_signed_in()

    async def filter_changed(self) -> None:
        self.limit = PAGE_SIZE
        await self.refresh_while_signed_in()

    async def labels_changed(self) -> None:
        """A star or a tag changed on a row: the chips follow (a new tag, one no recording carries any more)."""
        await self.filters.show()

    async def look_again(self) -> None:
        """While a recording is being saved: the list is drawn again only once a state changed, so the other rows'
        players keep playing meanwhile."""
        try:
            loaded = await run.io_bound(self.load)
        except AppError:
            return  # the next look may tell
        if loaded is not None and {(r.id, r.status) for r in loaded[0] if r.id not in self.hidden} != self.shown:
            self.show.refresh()

    async def show_more(self) -> None:
        self.limit += PAGE_SIZE
        await self.refresh_while_signed_in()

    @signed_in_only
    def refresh_while_signed_in(self) -> None:
        self.show.refresh()

    @ui.refreshable_method
    async def show(self) -> None:
        try:
            loaded = await run.io_bound(self.load)
            if loaded is None:  # the app is shutting down
                return
            found, hits, count, total_ms = loaded
            transcripts = await run.io_bound(self.transcripts_of, [r for r in found if r.id not in self.hidden]) or {}
        except AppError as error:
            ui.label(f'Your recordings could not be loaded: {error.message}').classes('text-negative')
            return
        visible = [r for r in found if r.id not in self.hidden]
        self.poller.active = any(r.status in STATUS_TEXT for r in visible)
        self.shown = {(r.id, r.status) for r in visible}
        self.show_totals(found, count, total_ms)
        if not visible:
            if not self.pending_deletes:  # while a delete can be undone, the undo bar says what happened
                self.empty_state()
            return
        with ui.element('div').classes('vr-list').mark('recording-list'):
            for recording in visible[: self.limit]:
                self.row(recording, transcripts.get(recording.id), hits.get(recording.id))
        if len(visible) > self.limit:
            ui.button('Show more', on_click=self.show_more).props('flat data-testid=show-more').mark('show-more')

    def row(self, recording: Recording, transcript: TranscriptPublic | None, hit: SearchHit | None) -> None:
        RecordingCard(
            self.services,
            self.user,
            recording,
            time_zone=self.time_zone,
            on_delete=self.delete,
            transcript=transcript,
            hit=hit,
            opened=recording.id in self.opened,
            on_toggle=self.toggled,
            on_change=self.labels_changed,
        )

    def show_totals(self, found: list[Recording], count: int, total_ms: int) -> None:
        """The totals leave out recordings whose delete can still be undone (those the list holds, when searching)."""
        listed = {r.id for r in found}
        gone = [r for r in self.hidden.values() if not self.search.strip() or r.id in listed]
        count = max(0, count - len(gone))
        total_ms = max(0, total_ms - sum(r.duration_ms or 0 for r in gone))
        noun = 'recording' if count == 1 else 'recordings'
        self.totals.set_text(f'{count} {noun} · {format_duration(total_ms)} in all')

    def toggled(self, recording_id: uuid.UUID, opened: bool) -> None:
        self.opened.add(recording_id) if opened else self.opened.discard(recording_id)

    def load(self) -> tuple[list[Recording], dict[uuid.UUID, SearchHit], int, int]:
        """The page's recordings, newest first; with a search, the best matches of titles and transcripts first."""
        limit = min(self.limit + len(self.hidden) + 1, 200)
        owner, favourite, tag = self.user.id, self.filters.favourite or None, self.filters.tag
        if not self.search.strip():
            found = self.services.recordings.list(user_id=owner, limit=limit, favourite=favourite, tag=tag)
            count, total_ms = self.services.recordings.summary(user_id=owner, favourite=favourite, tag=tag)
            return found, {}, count, total_ms
        hits = self.services.transcripts.search(
            user_id=owner, query=self.search, limit=limit, favourite=favourite, tag=tag
        )
        found = [hit.recording for hit in hits]
        return found, {hit.recording.id: hit for hit in hits}, len(found), sum(r.duration_ms or 0 for r in found)

    def transcripts_of(self, recordings: list[Recording]) -> dict[uuid.UUID, TranscriptPublic]:
        ready = [r for r in recordings[: self.limit] if is_playable(r.status)]
        return {r.id: self.services.transcripts.get(user_id=self.user.id, recording_id=r.id) for r in ready}

    def empty_state(self) -> None:
        with ui.column().classes('vr-empty items-center w-full').mark('empty-state'):
            if self.search or self.filters.active:
                self.no_match()
                return
            ui.icon('mic', size='3rem')
            ui.label('No recordings yet.').classes('text-h6')
            ui.button('Make your first recording', icon='mic', on_click=lambda: ui.navigate.to('/recorder'))

    def no_match(self) -> None:
        """Nothing matches: say what was asked for, and offer the way back."""
        ui.icon('search_off', size='3rem')
        if self.search:
            ui.label(f'No recording has “{self.search}” in its title or in what was said.')
        if self.filters.active:
            ui.label(f'Showing only recordings {self.filters.describe()}.')
        if self.search:
            ui.label('Try fewer or other words, or the start of a word.').classes('text-caption')
        with ui.row().classes('justify-center'):
            if self.search:
                ui.button('Clear the search', icon='close', on_click=self.clear_search).props(
                    'outline no-caps data-testid=clear-search'
                ).mark('clear-search')
            if self.filters.active:
                ui.button('Show all recordings', icon='list', on_click=self.show_all).props(
                    'outline no-caps data-testid=show-all'
                ).mark('show-all')

    def clear_search(self) -> None:
        self.search_input.set_value('')  # its change event draws the list again

    async def show_all(self) -> None:
        self.search_input.set_value('')
        await self.filters.clear()

    @signed_in_only
    async def delete(self, recording: Recording) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(f'Delete “{recording.title}”?')
            with ui.row():
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat')
                ui.button('Delete', on_click=lambda: dialog.submit(True)).props(
                    'color=negative data-testid=confirm-delete'
                ).mark('confirm-delete')
        session = current_session()
        if not await dialog or session is None or not await session.still_valid():  # the dialog may stay open long
            return
        self.hidden[recording.id] = recording
        self.pending_deletes[recording.id] = background_tasks.create(
            self.delete_later(recording, session), name=f'delete {recording.id}'
        )
        self.undo_area.clear()
        with self.undo_area, ui.row().classes('vr-undo items-center gap-2').mark('undo-bar'):
            ui.label(f'Deleted “{recording.title}”.')
            ui.button('Undo', on_click=lambda: self.undo(recording)).props('flat dense data-testid=undo-delete').mark(
                'undo-delete'
            )
        self.show.refresh()

    def undo(self, recording: Recording) -> None:
        task = self.pending_deletes.pop(recording.id, None)
        if task:
            task.cancel()
        self.hidden.pop(recording.id, None)
        self.undo_area.clear()
        self.show.refresh()

    async def delete_later(self, recording: Recording, session: PageSession) -> None:
        """The delete happens on the server after the undo window, even if the page is closed meanwhile; not if the
        session ended meanwhile (signed out everywhere because a device was lost: keeping is the safe side)."""
        await asyncio.sleep(UNDO_SECONDS)
        self.pending_deletes.pop(recording.id, None)
        if not await session.still_valid():
            return
        try:
            await run.io_bound(self.services.recordings.delete, user_id=self.user.id, recording_id=recording.id)
        except AppError as error:
            self.hidden.pop(recording.id, None)
            if not self.undo_area.is_deleted:
                with self.undo_area:
                    notify_error(error)
        if not self.undo_area.is_deleted:
            self.hidden.pop(recording.id, None)
            self.undo_area.clear()
            self.show.refresh()
