"""Transcripts: a recording's words with their times, as JSON or as a file, and a fresh transcription."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, ServicesDep
from api.schemas import LivePieceOut, LiveWordsOut, TranscribeAgainIn
from services.recordings.download_names import content_disposition
from services.transcripts.files import FileKind
from services.transcripts.languages import checked_language
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
    headers = {'Content-Disposition': content_disposition(found.name)}
    return Response(found.content, media_type=found.media_type, headers=headers)


@router.post('/recordings/{recording_id}/transcript', status_code=202)
def transcribe_again(
    recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep, body: TranscribeAgainIn | None = None
) -> TranscriptPublic:
    """Queue the recording's transcript to be made again, at the back of the caller's own queue, in the `language`
    given (from now on), else the user's default, else detected; limited per user, as each one costs a whole
    transcription."""
    language = checked_language(body.language if body else None)  # refused before it counts against the limit
    services.rate_limits.transcribe_again.hit(user.id)
    return services.transcripts.transcribe_again(user_id=user.id, recording_id=recording_id, language=language)


@router.get('/recordings/{recording_id}/live')
def live_words(
    recording_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1, description='the seq of the last piece the client has')] = -1,
) -> LiveWordsOut:
    """The words heard so far while the recording is being made, after the piece `after`, at most 200 at a time."""
    live = services.live.words(user_id=user.id, recording_id=recording_id, after=after)
    pieces = [LivePieceOut(seq=seq, text=text) for seq, text in live.pieces]
    return LiveWordsOut(state=live.state.value if live.state else None, busy=live.busy, pieces=pieces)


@router.post('/recordings/{recording_id}/live', status_code=202)
def ask_for_live_words(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> LiveWordsOut:
    """Ask for the words while the recording is being made, as the recorder page does once it has started (when the
    user has live transcripts on, and the recording is theirs and still recording; otherwise the state stays null)."""
    services.live.start(user_id=user.id, recording_id=recording_id)
    return live_words(recording_id, user, services)
