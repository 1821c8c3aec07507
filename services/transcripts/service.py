"""Transcripts for the API and the pages: a recording's words with their times, its job's state, files, and search.

The work itself happens in the worker process (worker.py); this service only reads, queues and searches.
"""

import logging
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from services.core.database import Database
from services.core.errors import AppError, Conflict, InvalidInput, NotFound
from services.core.models import Recording, Transcript, TranscriptState
from services.recordings.download_names import transcript_download_name
from services.recordings.lifecycle import RecordingStatus, is_playable
from services.recordings.service import MAX_PAGE_SIZE, load_owned, owned_matching
from services.transcripts import search as transcript_search
from services.transcripts.files import MEDIA_TYPES, FileKind, TranscriptFile, render
from services.transcripts.languages import checked_language
from services.transcripts.queue import TranscriptQueue
from services.transcripts.search import Filters, FoundRow, SnippetPiece, pieces
from services.transcripts.shapes import TranscriptPublic, decode, time_at

log = logging.getLogger(__name__)
ELLIPSIS = '…'


@dataclass(frozen=True)
class SearchHit:
    recording: Recording
    rank: float  # higher is better; 0 for a title that only contains the query inside a word
    snippet: list[SnippetPiece]  # from the transcript when it matched, else the title
    match_ms: int | None  # where the first matching word is spoken (None: only the title matched)


class TranscriptService:
    def __init__(self, *, database: Database, queue: TranscriptQueue | None) -> None:
        self.database = database
        self.queue = queue  # None: transcripts are off (VR_TRANSCRIBE=false)

    def get(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> TranscriptPublic:
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
            stored = session.get(Transcript, recording_id)
        return self._public(recording, stored)

    def transcribe_again(
        self, *, user_id: uuid.UUID, recording_id: uuid.UUID, language: str | None = None
    ) -> TranscriptPublic:
        """Queued now, so at the back of the user's own queue: it never overtakes their other jobs. In `language` (one
        of Whisper's codes), from now on; None: in the user's default language, else detected. Each one costs a whole
        transcription, so callers count it against `rate_limits.transcribe_again` first."""
        language = checked_language(language)
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if self.queue is None:
            raise Conflict('transcripts are turned off on this server')
        if not is_playable(recording.status):
            raise Conflict('the recording is not ready yet; it is transcribed once it is')
        if not self.queue.enqueue_in(recording_id, language):
            raise NotFound('recording not found')
        return self.get(user_id=user_id, recording_id=recording_id)

    def on_ready(self, recording_id: uuid.UUID) -> None:
        """Finalize's hook: a new or re-assembled recording is (re)queued. Never fails the finalize."""
        if self.queue is None:
            return
        try:
            self.queue.enqueue(recording_id)
        except AppError as error:
            log.warning('recording %s was not queued for its transcript: %s', recording_id, error.message)

    def file(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, kind: FileKind) -> TranscriptFile:
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
            transcript = self._public(recording, session.get(Transcript, recording_id))
        if transcript.state != TranscriptState.DONE:
            raise Conflict(f'the transcript is not ready (it is {transcript.state.value})')
        content = render(kind, transcript.segments)
        return TranscriptFile(transcript_download_name(recording, kind), MEDIA_TYPES[kind], content)

    def search(
        self,
        *,
        user_id: uuid.UUID,
        query: str,
        limit: int = 50,
        offset: int = 0,
        favourite: bool | None = None,
        tag: str | None = None,
    ) -> list[SearchHit]:
        """Titles and transcripts, best first; then titles that merely contain the query (e.g. part of a word); with
        the list's filters (starred, a tag) when given. Nothing found is an empty list; a failure raises."""
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise InvalidInput(f'limit must be 1..{MAX_PAGE_SIZE} and offset at least 0')
        query = ''.join(ch for ch in query if ch.isprintable())  # no NUL or other control character reaches SQL
        if not query.strip():
            return []
        filters = Filters(favourite=bool(favourite), tag=tag)
        with self.database.session() as session:
            found = transcript_search.find(
                session, user_id=user_id, query=query, limit=limit, offset=offset, filters=filters
            )
            hits = self._hits(session, found)
            if len(found) < limit:  # the ranked hits end on this page: so there are fewer than offset + limit
                matched = transcript_search.matching_ids(session, user_id=user_id, query=query, filters=filters)
                skip = max(0, offset - len(matched))
                hits += self._title_matches(session, (user_id, query, filters), matched, skip, limit - len(hits))
        return hits

    def _public(self, recording: Recording, stored: Transcript | None) -> TranscriptPublic:
        state, error = (stored.state, stored.error) if stored else (TranscriptState.QUEUED, None)
        if stored is None and recording.status == RecordingStatus.FAILED:
            state, error = TranscriptState.FAILED, 'the recording has no audio to transcribe'
        return TranscriptPublic(
            recording_id=recording.id,
            state=TranscriptState.OFF if self.queue is None else state,
            progress=stored.progress if stored else 0.0,
            language=stored.language if stored else None,
            error=error,
            segments=decode(stored.segments if stored else None),
        )

    @staticmethod
    def _hits(session: Session, found: list[FoundRow]) -> list[SearchHit]:
        ids = [row.recording_id for row in found]
        recordings = {r.id: r for r in session.exec(select(Recording).where(col(Recording.id).in_(ids))).all()}
        spoken = [row.recording_id for row in found if row.body_offset]
        query = select(Transcript.recording_id, Transcript.segments, Transcript.text)
        rows = session.exec(query.where(col(Transcript.recording_id).in_(spoken))).all() if spoken else []
        stored = {key: (segments, text or '') for key, segments, text in rows}
        return [
            _hit(row, recordings[row.recording_id], stored.get(row.recording_id))
            for row in found
            if row.recording_id in recordings
        ]

    @staticmethod
    def _title_matches(
        session: Session, search: tuple[uuid.UUID, str, Filters], exclude: set[uuid.UUID], skip: int, count: int
    ) -> list[SearchHit]:
        user_id, query, filters = search
        ordered = select(Recording.id).where(
            *owned_matching(user_id, query, favourite=filters.favourite, tag=filters.tag)
        )
        ordered = ordered.order_by(col(Recording.created_at).desc(), col(Recording.id).desc())
        ids = [i for i in session.exec(ordered).all() if i not in exclude][skip : skip + count]
        recordings = {r.id: r for r in session.exec(select(Recording).where(col(Recording.id).in_(ids))).all()}
        found = [recordings[i] for i in ids if i in recordings]
        return [SearchHit(recording, 0.0, _title_pieces(recording.title, query), None) for recording in found]


def _hit(row: FoundRow, recording: Recording, stored: tuple[str | None, str] | None) -> SearchHit:
    """The passage and the moment of the first match when the transcript matched, else the marked title."""
    if row.body is None or stored is None:
        return SearchHit(recording, row.rank, pieces(row.title), None)
    segments, text = stored
    match_ms = time_at(segments, row.body_offset - 1) if row.body_offset else None
    return SearchHit(recording, row.rank, passage(row.body, text), match_ms)


def passage(marked: str, text: str) -> list[SnippetPiece]:
    """A transcript's marked passage, with "… " before and " …" after only where it was cut from the text: the same
    on both databases (SQLite's snippet marks its cuts, PostgreSQL's headline does not), never doubled."""
    marked = marked.strip().removeprefix(ELLIPSIS).removesuffix(ELLIPSIS).strip()
    found = pieces(marked)
    plain = ''.join(piece.text for piece in found)
    before = [SnippetPiece(text=f'{ELLIPSIS} ', match=False)] if not text.lstrip().startswith(plain[:40]) else []
    after = [SnippetPiece(text=f' {ELLIPSIS}', match=False)] if not text.rstrip().endswith(plain[-40:]) else []
    return before + found + after


def _title_pieces(title: str, query: str) -> list[SnippetPiece]:
    at = title.lower().find(query.strip().lower())
    if at < 0:
        return [SnippetPiece(text=title, match=False)]
    end = at + len(query.strip())
    parts = [(title[:at], False), (title[at:end], True), (title[end:], False)]
    return [SnippetPiece(text=text, match=match) for text, match in parts if text]
