"""Transcripts: a recording's words with their times, as JSON or as a file, and a fresh transcription."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, ServicesDep
from services.transcripts.files import FileKind
from services.transcripts.shapes import TranscriptPublic

router = APIRouter()


@router.get(
    '/recordings/{recording_id}/transcript',
    response_model=TranscriptPublic,
    responses={200: {'content': {'text/plain': {}, 'text/vtt': {}}}},
)
def transcript(
    recording_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    format: Annotated[FileKind | None, Query(description='a file: txt, srt or vtt subtitles')] = None,
) -> TranscriptPublic | Response:
    """State, progress and the words with their times; with `format`, the finished transcript as a file."""
    if format is None:
        return services.transcripts.get(user_id=user.id, recording_id=recording_id)
    found = services.transcripts.file(user_id=user.id, recording_id=recording_id, kind=format)
    disposition = f'attachment; filename="{found.name}"'
    return Response(found.content, media_type=found.media_type, headers={'Content-Disposition': disposition})


@router.post('/recordings/{recording_id}/transcript', status_code=202)
def transcribe_again(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> TranscriptPublic:
    """Queue the recording's transcript to be made again, at the back of the caller's own queue; limited per user,
    as each one costs a whole transcription."""
    services.rate_limits.transcribe_again.hit(user.id)
    return services.transcripts.transcribe_again(user_id=user.id, recording_id=recording_id)
