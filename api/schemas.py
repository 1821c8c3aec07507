"""What the API reads and answers; a recording itself is `services.core.models.RecordingPublic`, as everywhere."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.core.models import RecordingPublic
from services.transcripts.languages import MAX_LANGUAGE_LENGTH
from services.transcripts.search import SnippetPiece

MAX_SEQ = 2**31 - 1  # the database column's range; the settings' own, smaller limit is the chunk service's to judge


class StrictBody(BaseModel):
    """A request body that refuses unknown fields, so a typo is an error, not silently ignored."""

    model_config = ConfigDict(extra='forbid')


class ErrorOut(BaseModel):
    """Every refusal, rendered in one place (errors.py): the reason in plain words, and what helps to act on it."""

    model_config = ConfigDict(extra='allow')  # details such as `retry_after_s`, `missing` or `size`
    error: str
    problems: list[str] | None = Field(default=None, description='each problem of an invalid request, at most 10')


class OnboardIn(StrictBody):
    name: str = Field(max_length=1000)


class OnboardOut(BaseModel):
    user_id: uuid.UUID
    name: str
    token: str


class TokenOut(BaseModel):
    token: str


class LinkOut(BaseModel):
    url: str


class ShareIn(StrictBody):
    expires_in_s: int = Field(default=7 * 24 * 3600, ge=300, le=30 * 24 * 3600)


class ShareOut(BaseModel):
    id: uuid.UUID
    url: str
    expires_at: datetime


LANGUAGE_DESCRIPTION = "one of Whisper's language codes (ISO 639-1: en, de, es, …); null: the model detects it"
VOCABULARY_DESCRIPTION = (
    'names and terms the speech model listens for in your recordings ("Zanzibar", "Priya Venkataraman"), trimmed, '
    'repeats (in any case) dropped: at most VR_VOCABULARY_MAX_ENTRIES entries (30 by default) of '
    'VR_VOCABULARY_MAX_ENTRY_CHARS characters (40), VR_VOCABULARY_MAX_CHARS in all (160), within what the prompt holds'
)


class ProfileOut(BaseModel):
    user_id: uuid.UUID
    name: str
    created_at: datetime
    recording_count: int
    language: str | None = Field(
        description=f'the language the user speaks, which transcripts are made in: {LANGUAGE_DESCRIPTION}'
    )
    vocabulary: list[str] = Field(description=VOCABULARY_DESCRIPTION)
    live_transcript: bool = Field(description='whether the recorder page shows the words while the user speaks')


class ProfilePatchIn(StrictBody):
    """What a user may change of their profile; a field left out stays as it is. One change refused refuses all."""

    language: str | None = Field(default=None, max_length=MAX_LANGUAGE_LENGTH, description=LANGUAGE_DESCRIPTION)
    vocabulary: list[str] | None = Field(default=None, description=f'{VOCABULARY_DESCRIPTION}; null or []: none')
    live_transcript: bool | None = Field(default=None, description='show the words while recording; null: unchanged')


class TranscribeAgainIn(StrictBody):
    language: str | None = Field(
        default=None,
        max_length=MAX_LANGUAGE_LENGTH,
        description=f"the recording's language from now on: {LANGUAGE_DESCRIPTION} (or the user's default language)",
    )


class RecordingCreateIn(StrictBody):
    mime_type: str = Field(max_length=100)
    title: str | None = Field(default=None, max_length=1000)
    file_size_bytes: int | None = Field(
        default=None, ge=0, le=2**53, description="an import: the file's size (its chunks are the file's bytes)"
    )
    file_modified_at: datetime | None = Field(default=None, description="an import: the file's last-modified time")


class RecordingPatchIn(StrictBody):
    """What the owner may change of a recording; a field left out stays. One change refused refuses all."""

    title: str | None = Field(default=None, max_length=1000, description='at most 200 characters; longer is refused')
    favourite: bool | None = None
    tags: list[str] | None = Field(
        default=None,
        max_length=100,
        description='the whole list ([] clears it): trimmed, repeats in any case dropped, at most '
        'VR_MAX_TAGS_PER_RECORDING tags (10) of VR_MAX_TAG_CHARS characters (30)',
    )


class RecordingHit(RecordingPublic):
    """A search result: the recording, the passage that matched (runs of text, `match` marking the words found;
    render them as text) and where the first matching word is spoken."""

    snippet: list[SnippetPiece]
    match_ms: int | None


class ChunkOut(BaseModel):
    seq: int
    size: int


class HealthOut(BaseModel):
    status: str
    version: str
    database: str
    storage: str


class LivePieceOut(BaseModel):
    seq: int
    text: str


class LiveWordsOut(BaseModel):
    """The words heard while the recording is being made; the full transcript replaces them once it is stored."""

    state: Literal['waiting', 'live', 'busy', 'ended'] | None = Field(
        description='null: never asked for; busy: paused because the server is busy (the full transcript follows)'
    )
    busy: bool
    pieces: list[LivePieceOut]
