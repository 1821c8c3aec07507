"""A user's recordings: create, list, rename, delete. Every call is scoped to the owner."""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, delete, func, select, update

from services.audio.formats import audio_format
from services.core.database import Database
from services.core.errors import InvalidInput, LimitReached, NotFound
from services.core.models import Chunk, LiveTranscript, LiveTranscriptPiece, Recording, Share, Transcript, utc_now
from services.storage.keys import audio_key, recording_prefix
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
MAX_TITLE_LENGTH = 200
MAX_PAGE_SIZE = 200


def recording_audio_key(recording: Recording) -> str:
    """Where a recording's joined file lives: the key built from its id and its container's extension."""
    return audio_key(recording.id, audio_format(recording.mime_type).extension)


def download_name(recording: Recording, *, mp3: bool = False) -> str:
    return f'recording-{recording.id}.{"mp3" if mp3 else audio_format(recording.mime_type).extension}'


def clean_title(title: str) -> str:
    cleaned = ' '.join(''.join(ch for ch in title if ch.isprintable()).split())
    if not cleaned:
        raise InvalidInput('the title cannot be empty')
    if len(cleaned) > MAX_TITLE_LENGTH:
        raise InvalidInput(f'the title is too long (at most {MAX_TITLE_LENGTH} characters)')
    return cleaned


def load_owned(session: Session, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> Recording:
    """Another user's recording is reported exactly like a missing one, so ids leak nothing."""
    recording = session.get(Recording, recording_id)
    if recording is None or recording.user_id != user_id:
        raise NotFound('recording not found')
    return recording


def owned_matching(user_id: uuid.UUID, search: str) -> list[Any]:
    """The WHERE conditions for a user's recordings whose title holds `search` (literally: no wildcards of its own)."""
    conditions: list[Any] = [Recording.user_id == user_id]
    if search.strip():
        pattern = search.strip()[:MAX_TITLE_LENGTH].replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
        conditions.append(col(Recording.title).ilike(f'%{pattern}%', escape='\\'))
    return conditions


class RecordingService:
    def __init__(self, *, database: Database, storage: Storage, max_recordings_per_user: int = 1000) -> None:
        self.database = database
        self.storage = storage
        self.max_recordings_per_user = max_recordings_per_user

    def create(self, *, user_id: uuid.UUID, mime_type: str, title: str | None = None) -> Recording:
        fmt = audio_format(mime_type)
        default_title = f'Recording {datetime.now(UTC):%Y-%m-%d %H:%M} UTC'
        recording = Recording(user_id=user_id, mime_type=fmt.mime_type, title=clean_title(title or default_title))
        with self.database.session() as session:
            count = session.exec(select(func.count()).select_from(Recording).where(Recording.user_id == user_id)).one()
            if count >= self.max_recordings_per_user:
                raise LimitReached(
                    f'you have reached the limit of {self.max_recordings_per_user} recordings; delete some to make room'
                )
            session.add(recording)
            session.commit()
        return recording

    def get(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> Recording:
        with self.database.session() as session:
            return load_owned(session, user_id=user_id, recording_id=recording_id)

    def owner_of(self, recording_id: uuid.UUID) -> uuid.UUID:
        """The owner, for requests authorized by a signed link rather than by a user."""
        with self.database.session() as session:
            recording = session.get(Recording, recording_id)
        if recording is None:
            raise NotFound('recording not found')
        return recording.user_id

    def list(self, *, user_id: uuid.UUID, limit: int = 50, offset: int = 0, search: str = '') -> list[Recording]:
        """Newest first; `search` matches anywhere in the title, ignoring case."""
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise InvalidInput(f'limit must be 1..{MAX_PAGE_SIZE} and offset at least 0')
        query = (
            select(Recording)
            .where(*owned_matching(user_id, search))
            .order_by(col(Recording.created_at).desc(), col(Recording.id).desc())
            .offset(offset)
            .limit(limit)
        )
        with self.database.session() as session:
            return list(session.exec(query).all())

    def summary(self, *, user_id: uuid.UUID, search: str = '') -> tuple[int, int]:
        """How many recordings match, and their total length in ms."""
        query = select(func.count(), func.coalesce(func.sum(Recording.duration_ms), 0)).where(
            *owned_matching(user_id, search)
        )
        with self.database.session() as session:
            count, total_ms = session.exec(query).one()
        return int(count), int(total_ms or 0)

    def rename(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, title: str) -> Recording:
        cleaned = clean_title(title)
        owned = (col(Recording.id) == recording_id, col(Recording.user_id) == user_id)
        statement = update(Recording).where(*owned).values(title=cleaned, updated_at=utc_now())
        with self.database.session() as session:
            # one conditional UPDATE: a delete racing it leaves no row to match (not-found), never a failed commit
            if session.exec(statement).rowcount == 0:  # type: ignore[call-overload]
                raise NotFound('recording not found')
            session.commit()
            return load_owned(session, user_id=user_id, recording_id=recording_id)

    def delete(self, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> None:
        """The rows go first, in one transaction: from then on every writer racing us (a chunk, finalize, an MP3
        export) sees the recording gone and removes what it wrote, and what is left in storage is removed here
        or, if storage fails now, by the orphan sweep."""
        with self.database.session() as session:
            if session.connection().dialect.name == 'postgresql':  # waits for chunk inserts holding a key share
                session.exec(text('SELECT 1 FROM recording WHERE id = :id FOR UPDATE').bindparams(id=recording_id))  # type: ignore[call-overload]
            load_owned(session, user_id=user_id, recording_id=recording_id)
            session.exec(delete(Chunk).where(col(Chunk.recording_id) == recording_id))  # type: ignore[call-overload]
            session.exec(delete(Share).where(col(Share.recording_id) == recording_id))  # type: ignore[call-overload]
            session.exec(delete(Transcript).where(col(Transcript.recording_id) == recording_id))  # type: ignore[call-overload]
            for live in (LiveTranscriptPiece, LiveTranscript):  # the words heard while it was made
                session.exec(delete(live).where(col(live.recording_id) == recording_id))  # type: ignore[call-overload]
            session.exec(delete(Recording).where(col(Recording.id) == recording_id))  # type: ignore[call-overload]
            session.commit()
        try:
            self.storage.delete_prefix(recording_prefix(recording_id))
        except Exception:
            log.warning('the audio of deleted recording %s stays until the orphan sweep', recording_id, exc_info=True)
