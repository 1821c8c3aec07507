"""Database tables and the public shapes derived from them."""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import WithJsonSchema, field_validator
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, Text, TypeDecorator, false, true
from sqlmodel import Field, SQLModel

from services.recordings.lifecycle import PUBLIC_STATUSES, RecordingStatus, public_status


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on every engine: SQLite drops the zone, so it is re-attached on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError('naive datetime')
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _timestamp_column() -> Column[datetime]:
    return Column(UTCDateTime(), nullable=False)


class User(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=50)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    # Raised by a key rotation or "sign out everywhere": browser sessions and upload tokens carry the version
    # they were issued with, and any older one stops working at once.
    credential_version: int = Field(default=1)
    # When a worker last took up one of this user's transcripts: users take turns, the least recently served first,
    # so one user's backlog delays another's job by at most one (see transcripts/queue.py).
    transcript_served_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # The language the user speaks (one of Whisper's codes): their recordings are transcribed in it, skipping
    # detection. None: the model detects each recording's language.
    language: str | None = Field(default=None, max_length=16)
    # Names and terms the model listens for in the user's recordings (a JSON list, checked by
    # transcripts/vocabulary.py). None: none were ever given.
    vocabulary: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Whether the recorder page shows the words while the user speaks (transcripts/live_store.py).
    live_transcript: bool = Field(default=True, sa_column_kwargs={'server_default': true()})


class RecordingBase(SQLModel):
    """What a client may see of a recording: the API, the audio channel and the pages all speak this shape."""

    title: str = Field(max_length=200)
    mime_type: str = Field(max_length=40)
    status: RecordingStatus = Field(default=RecordingStatus.RECORDING, max_length=16)
    duration_ms: int | None = None
    # 64-bit: an imported file may pass 2 GiB (SQLite's INTEGER is 64-bit already; PostgreSQL's is altered in 0014)
    size_bytes: int | None = Field(default=None, sa_type=BigInteger().with_variant(Integer(), 'sqlite'))
    error: str | None = Field(default=None, max_length=500)
    # An imported file's own type and size (None: recorded in the browser); see recordings/imports.py.
    original_mime_type: str | None = Field(default=None, max_length=40)
    original_bytes: int | None = Field(default=None, sa_type=BigInteger)


class Recording(RecordingBase, table=True):
    __table_args__ = (Index('ix_recording_user_created', 'user_id', 'created_at'),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key='user.id')
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    peaks: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON list, see audio/peaks.py
    assembled_chunks: int | None = Field(default=None, description='how many chunks the current audio file holds')
    # The MP3 copy's size once it is made: it counts in the owner's storage quota like the recording itself.
    mp3_bytes: int | None = Field(default=None)
    favourite: bool = Field(default=False, sa_column_kwargs={'server_default': false()})
    # The labels as the owner typed them, in their order (recordings/tags.py); `recording_tag` indexes them.
    tags: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The owner gave the title (at creation or by renaming): an auto title from the transcript never replaces it.
    named: bool = Field(default=False, sa_column_kwargs={'server_default': false()})


class RecordingPublic(RecordingBase):
    """A recording as its owner's clients get it; `audio_url` is set once it is ready to play."""

    model_config = {'json_schema_serialization_defaults_required': True}  # every answer has every field

    id: uuid.UUID
    created_at: datetime
    audio_url: str | None = None
    favourite: bool = False
    tags: list[str] = []
    named: bool = Field(default=False, description='the owner gave the title; false: the default or one from its words')
    # Statuses only the server tells apart are shown as the one clients know (see lifecycle.public_status).
    status: Annotated[RecordingStatus, WithJsonSchema({'type': 'string', 'enum': list(PUBLIC_STATUSES)})] = (
        RecordingStatus.RECORDING
    )

    @field_validator('tags', mode='before')
    @classmethod
    def none_is_empty(cls, tags: list[str] | None) -> list[str]:
        return tags or []

    @field_validator('status')
    @classmethod
    def as_clients_know_it(cls, status: RecordingStatus) -> RecordingStatus:
        return public_status(status)


class RecordingTag(SQLModel, table=True):
    """One tag of a recording, by its case-folded key: what filtering and the owner's list of tags read."""

    __tablename__ = 'recording_tag'
    __table_args__ = (Index('ix_recording_tag_user_key', 'user_id', 'key'),)

    recording_id: uuid.UUID = Field(foreign_key='recording.id', primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    user_id: uuid.UUID = Field(foreign_key='user.id')
    label: str = Field(max_length=200)


class Share(SQLModel, table=True):
    """A public link to one recording; its random id is the capability, deleting the row revokes it."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    recording_id: uuid.UUID = Field(foreign_key='recording.id', index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    expires_at: datetime = Field(sa_column=_timestamp_column())


class EndedSession(SQLModel, table=True):
    """A browser session ended by a plain "Sign out": the upload tokens it was given carry its id and stop working.
    Kept as long as such a token could live; "sign out everywhere" ends all of a user's sessions by version instead."""

    __tablename__ = 'ended_session'

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key='user.id', index=True)
    ended_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())


class Chunk(SQLModel, table=True):
    """One acknowledged piece of a recording; the primary key keeps a recording's chunks ordered by seq."""

    recording_id: uuid.UUID = Field(foreign_key='recording.id', primary_key=True)
    seq: int = Field(primary_key=True)
    size: int
    sha256: str = Field(max_length=64)
    # Stored by version 0.1 under `chunks/<seq>`, before keys carried the content hash (see storage/keys.py).
    legacy_key: bool = Field(default=False, sa_column_kwargs={'server_default': false()})


class TranscriptState(StrEnum):
    QUEUED = 'queued'
    TRANSCRIBING = 'transcribing'
    DONE = 'done'
    FAILED = 'failed'
    OFF = 'off'  # shown when the server has transcripts turned off (VR_TRANSCRIBE=false); never stored


class Transcript(SQLModel, table=True):
    """A recording's words with their times, and the job that makes them (see transcripts/queue.py)."""

    __table_args__ = (Index('ix_transcript_state_queued', 'state', 'queued_at'),)

    recording_id: uuid.UUID = Field(foreign_key='recording.id', primary_key=True)
    state: TranscriptState = Field(default=TranscriptState.QUEUED, max_length=16)
    progress: float = Field(default=0.0, description='the fraction of the audio transcribed, 0..1')
    error: str | None = Field(default=None, max_length=500)
    # The language the words were heard in (ISO 639-1; search reads them in it). None until a transcript is made, and
    # when no speech was heard.
    language: str | None = Field(default=None, max_length=16)
    # Asked for this recording ("transcribe again as …"); before the user's default. None: the user's, else detected.
    requested_language: str | None = Field(default=None, max_length=16)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the words, joined by spaces
    segments: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON, see transcripts/shapes.py
    attempts: int = Field(default=0)
    # Raised by every queueing and every claim: a worker's writes count only while it still holds its generation,
    # so a job queued again, or taken over after its lease ran out, never gets an older result.
    generation: int = Field(default=0)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    queued_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())


class LiveState(StrEnum):
    WAITING = 'waiting'  # the page asked for live words; no worker hears the recording yet
    LIVE = 'live'  # a worker hears it, under a lease it renews
    BUSY = 'busy'  # paused: the workers had more live recordings than they could keep up with
    ENDED = 'ended'  # the recording stopped, the user turned live words off, or its audio could not be decoded


class LiveTranscript(SQLModel, table=True):
    """A recording's live transcript while it is being made (see transcripts/live_store.py)."""

    __tablename__ = 'live_transcript'
    __table_args__ = (Index('ix_live_transcript_state_created', 'state', 'created_at'),)

    recording_id: uuid.UUID = Field(foreign_key='recording.id', primary_key=True)
    state: LiveState = Field(default=LiveState.WAITING, max_length=16)
    worker: str | None = Field(default=None, max_length=64)  # who hears it now
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    pieces: int = Field(default=0)  # how many live_piece rows it has: the next one's seq
    heard_ms: int = Field(default=0)  # the recording's time up to which words were written: a new worker goes on there
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())
    updated_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp_column())


class LiveTranscriptPiece(SQLModel, table=True):
    """Words heard live, in the recording's time; the page reads those after the last one it shows."""

    __tablename__ = 'live_piece'

    recording_id: uuid.UUID = Field(foreign_key='recording.id', primary_key=True)
    seq: int = Field(primary_key=True)
    start_ms: int
    end_ms: int
    text: str = Field(sa_column=Column(Text, nullable=False))
