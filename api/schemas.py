"""What the API reads and answers; a recording itself is `services.core.models.RecordingPublic`, as everywhere."""

import uuid
from datetime import datetime

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


class ProfileOut(BaseModel):
    user_id: uuid.UUID
    name: str
    created_at: datetime
    recording_count: int
    language: str | None = Field(
        description=f'the language the user speaks, which transcripts are made in: {LANGUAGE_DESCRIPTION}'
    )


class ProfilePatchIn(StrictBody):
    """What a user may change of their profile; a field left out stays as it is."""

    language: str | None = Field(default=None, max_length=MAX_LANGUAGE_LENGTH, description=LANGUAGE_DESCRIPTION)


class TranscribeAgainIn(StrictBody):
    language: str | None = Field(
        default=None,
        max_length=MAX_LANGUAGE_LENGTH,
        description=f"the recording's language from now on: {LANGUAGE_DESCRIPTION} (or the user's default language)",
    )


class RecordingCreateIn(StrictBody):
    mime_type: str = Field(max_length=100)
    title: str | None = Field(default=None, max_length=1000)


class RecordingPatchIn(StrictBody):
    title: str = Field(max_length=1000)


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
