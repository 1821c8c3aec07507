"""A user's recordings: create, list, rename, delete. Every call is scoped to the owner."""

import builtins  # `list` below names the method: annotations after it say builtins.list
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, delete, func, select, update

from services.audio.formats import audio_format
from services.core.database import Database
from services.core.errors import InvalidInput, LimitReached, NotFound
from services.core.models import (
    Chunk,
    LiveTranscript,
    LiveTranscriptPiece,
    Recording,
    RecordingTag,
    Share,
    Transcript,
    utc_now,
)
from services.recordings.download_names import download_name
from services.recordings.tags import TagCount, TagLimits, clean_tags, has_tag, store_tags, tags_of
from services.recordings.titles import MAX_TITLE_LENGTH, default_title
from services.storage.keys import audio_key, recording_prefix
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 200
__all__ = ['MAX_TITLE_LENGTH', 'RecordingService', 'download_name']  # both were defined here once: still importable


def recording_audio_key(recording: Recording) -> str:
    """Where a recording's joined file lives: the key built from its id and its container's extension."""
    return audio_key(recording.id, audio_format(recording.mime_type).extension)


def clean_title(title: str) -> str:
    cleaned = ' '.join(''.join(ch for ch in title if ch.isprintable()).split())
    if not cleaned:
        raise InvalidInput('the title cannot be empty')
    if len(cleaned) > MAX_TITLE_LENGTH:
        raise InvalidInput(f'the title is too long: {len(cleaned)} characters, at most {MAX_TITLE_LENGTH}')
    return cleaned


def load_owned(session: Session, *, user_id: uuid.UUID, recording_id: uuid.UUID) -> Recording:
    """Another user's recording is reported exactly like a missing one, so ids leak nothing."""
    recording = session.get(Recording, recording_id)
    if recording is None or recording.user_id != user_id:
        raise NotFound('recording not found')
    return recording


def owned_matching(
    user_id: uuid.UUID, search: str, *, favourite: bool | None = None, tag: str | None = None
) -> list[Any]:
    """The WHERE conditions for a user's recordings whose title holds `search` (literally: no wildcards of its own),
    starred ones only with `favourite`, those carrying `tag` (in any case) with it."""
    conditions: list[Any] = [Recording.user_id == user_id, *filtered(favourite=favourite, tag=tag)]
    if search.strip():
        pattern = search.strip()[:MAX_TITLE_LENGTH].replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_')
        conditions.append(col(Recording.title).ilike(f'%{pattern}%', escape='\\'))
    return conditions


def filtered(*, favourite: bool | None = None, tag: str | None = None) -> list[Any]:
    """The list's filters as WHERE conditions (favourite False or None: every recording)."""
    conditions: list[Any] = [col(Recording.favourite).is_(True)] if favourite else []
    return conditions + ([has_tag(tag)] if tag is not None and tag.strip() else [])


class RecordingService:
    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        max_recordings_per_user: int = 1000,
        tag_limits: TagLimits | None = None,
    ) -> None:
        self.database = database
        self.storage = storage
        self.max_recordings_per_user = max_recordings_per_user
        self.tag_limits = tag_limits or TagLimits()

    def create(
        self, *, user_id: uuid.UUID, mime_type: str, title: str | None = None, title_is_default: bool = False
    ) -> Recording:
        """A client's title is the user's, and no auto title replaces it, unless the client says it is only its own
        default (the recorder's "Recording <local date and time>"): that one stands until the transcript names it."""
        fmt = audio_format(mime_type)
        has_title = bool(title and title.strip())
        named = has_title and not title_is_default
        given = clean_title(title) if has_title and title else default_title(datetime.now(UTC))
        recording = Recording(user_id=user_id, mime_type=fmt.mime_type, title=given, named=named)
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

    def list(
        self,
        *,
        user_id: uuid.UUID,
        limit: int = 50,
        offset: int = 0,
        search: str = '',
        favourite: bool | None = None,
        tag: str | None = None,
    ) -> list[Recording]:
        """Newest first; `search` matches anywhere in the title, ignoring case; `favourite` and `tag` filter."""
        if not 1 <= limit <= MAX_PAGE_SIZE or offset < 0:
            raise InvalidInput(f'limit must be 1..{MAX_PAGE_SIZE} and offset at least 0')
        query = (
            select(Recording)
            .where(*owned_matching(user_id, search, favourite=favourite, tag=tag))
            .order_by(col(Recording.created_at).desc(), col(Recording.id).desc())
            .offset(offset)
            .limit(limit)
        )
        with self.database.session() as session:
            return list(session.exec(query).all())

    def summary(
        self, *, user_id: uuid.UUID, search: str = '', favourite: bool | None = None, tag: str | None = None
    ) -> tuple[int, int]:
        """How many recordings match, and their total length in ms."""
        query = select(func.count(), func.coalesce(func.sum(Recording.duration_ms), 0)).where(
            *owned_matching(user_id, search, favourite=favourite, tag=tag)
        )
        with self.database.session() as session:
            count, total_ms = session.exec(query).one()
        return int(count), int(total_ms or 0)

    def rename(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, title: str) -> Recording:
        """The title becomes the user's: an auto title never replaces it."""
        cleaned = clean_title(title)
        owned = (col(Recording.id) == recording_id, col(Recording.user_id) == user_id)
        statement = update(Recording).where(*owned).values(title=cleaned, named=True, updated_at=utc_now())
        with self.database.session() as session:
            # one conditional UPDATE: a delete racing it leaves no row to match (not-found), never a failed commit
            if session.exec(statement).rowcount == 0:  # type: ignore[call-overload]
                raise NotFound('recording not found')
            session.commit()
            return load_owned(session, user_id=user_id, recording_id=recording_id)

    def set_favourite(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, favourite: bool) -> Recording:
        return self.update(user_id=user_id, recording_id=recording_id, favourite=favourite)

    def set_tags(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, tags: builtins.list[str]) -> Recording:
        """The whole list replaced ([] clears it); past the limits refused in plain words, nothing changed."""
        return self.update(user_id=user_id, recording_id=recording_id, tags=tags)

    def update(
        self,
        *,
        user_id: uuid.UUID,
        recording_id: uuid.UUID,
        title: str | None = None,
        favourite: bool | None = None,
        tags: builtins.list[str] | None = None,
    ) -> Recording:
        """Title, star and tags in one transaction (a field left None stays): one refusal refuses all."""
        cleaned_title = clean_title(title) if title is not None else None
        cleaned_tags = clean_tags(tags, self.tag_limits) if tags is not None else None
        with self.database.session() as session:
            recording = session.exec(
                select(Recording).where(col(Recording.id) == recording_id).with_for_update()
            ).one_or_none()
            if recording is None or recording.user_id != user_id:
                raise NotFound('recording not found')
            if cleaned_title is not None:
                recording.title, recording.named = cleaned_title, True
            if favourite is not None:
                recording.favourite = favourite
            if cleaned_tags is not None:
                store_tags(session, recording, cleaned_tags)
            recording.updated_at = utc_now()
            session.add(recording)
            session.commit()
            session.refresh(recording)
            return recording

    def tags(self, *, user_id: uuid.UUID) -> builtins.list[TagCount]:
        """Every tag the user gave, with how many recordings carry it: the list's filter chips."""
        with self.database.session() as session:
            return tags_of(session, user_id)

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
            session.exec(delete(RecordingTag).where(col(RecordingTag.recording_id) == recording_id))  # type: ignore[call-overload]
            session.exec(delete(Transcript).where(col(Transcript.recording_id) == recording_id))  # type: ignore[call-overload]
            for live in (LiveTranscriptPiece, LiveTranscript):  # the words heard while it was made
                session.exec(delete(live).where(col(live.recording_id) == recording_id))  # type: ignore[call-overload]
            session.exec(delete(Recording).where(col(Recording.id) == recording_id))  # type: ignore[call-overload]
            session.commit()
        try:
            self.storage.delete_prefix(recording_prefix(recording_id))
        except Exception:
            log.warning('the audio of deleted recording %s stays until the orphan sweep', recording_id, exc_info=True)
