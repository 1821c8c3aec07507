"""Audio: the owner's stream (signed link or bearer token), the MP3 export, and a share link's stream."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, ServicesDep, authenticate
from api.http_range import parse_range
from api.schemas import LinkOut
from services.access.audio_links import FileKind, stored_file
from services.audio.exports import recording_mp3_key
from services.container import Services
from services.core.errors import Forbidden, NotFound
from services.core.models import Recording
from services.recordings.download_names import content_disposition
from services.recordings.lifecycle import is_playable

router = APIRouter()
RangeHeader = Annotated[str | None, Header(alias='range', description='one byte range: bytes=0-1023, bytes=-500')]
IfRangeHeader = Annotated[
    str | None, Header(description='we send no ETag or Last-Modified for it to match: with it, the whole audio comes')
]
LATEST_EXPIRY = 2**32  # Unix time in 2106: a link we signed expires days from now, so a later one is not ours
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {'description': 'the whole audio', 'content': {'audio/*': {}}},
    206: {'description': 'the requested byte range', 'content': {'audio/*': {}}},
}


@router.get('/recordings/{recording_id}/audio', response_model=None, responses=AUDIO_RESPONSES)
def audio(
    recording_id: uuid.UUID,
    services: ServicesDep,
    expires: Annotated[int | None, Query(ge=0, le=LATEST_EXPIRY)] = None,
    signature: Annotated[str | None, Query(max_length=200)] = None,
    download: bool = False,
    format: FileKind = 'original',
    authorization: Annotated[str | None, Header()] = None,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    user_id = audio_owner(services, recording_id, expires, signature, authorization)
    recording = services.recordings.get(user_id=user_id, recording_id=recording_id)
    if not is_playable(recording.status):
        raise NotFound('the audio is not ready yet')
    if format == 'mp3' and not services.storage.exists(recording_mp3_key(recording)):
        raise NotFound('there is no MP3 of this recording yet: POST /api/recordings/{id}/mp3 makes one')
    return stream_audio(services, recording, (range_header, if_range), download, kind=format)


@router.post('/recordings/{recording_id}/mp3')
async def make_mp3(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> LinkOut:
    """Makes the MP3 copy (once; later calls return at once) and answers with its download URL. Async: waiting
    for the encoder holds no thread, so any number of these waiting cannot slow down other requests."""
    recording = await services.exports.await_mp3(user_id=user.id, recording_id=recording_id)
    return LinkOut(url=services.links.url(recording, download=True, kind='mp3'))


@router.get('/shares/{share_id}/audio', response_model=None, responses=AUDIO_RESPONSES)
def shared_audio(
    share_id: uuid.UUID, services: ServicesDep, range_header: RangeHeader = None, if_range: IfRangeHeader = None
) -> Response:
    """A share link's audio, checked against the database on every request, so revoking it stops it at once."""
    _share, recording = services.shares.resolve(share_id)
    return stream_audio(services, recording, (range_header, if_range), False, kind='original', share_id=share_id)


def audio_owner(
    services: Services, recording_id: uuid.UUID, expires: int | None, signature: str | None, authorization: str | None
) -> uuid.UUID:
    """A signed link names its recording's owner; without one, the bearer token must."""
    if expires is not None and signature is not None:
        if not services.links.signer.verify(recording_id, expires, signature):
            raise Forbidden('this audio link has expired or is not valid')
        return services.recordings.owner_of(recording_id)
    return authenticate(services, authorization).id


def stream_audio(
    services: Services,
    recording: Recording,
    range_headers: tuple[str | None, str | None],
    download: bool,
    *,
    kind: FileKind,
    share_id: uuid.UUID | None = None,
) -> Response:
    key, media_type, name = stored_file(services.storage, recording, kind)
    size = services.storage.size(key)
    range_header, if_range = range_headers
    byte_range = parse_range(range_header, size, if_range=if_range)
    start, end = byte_range or (0, size - 1)
    headers = {'Accept-Ranges': 'bytes', 'Content-Length': str(end - start + 1), 'Cache-Control': 'private'}
    if byte_range:
        headers['Content-Range'] = f'bytes {start}-{end}/{size}'
    if download:
        headers['Content-Disposition'] = content_disposition(name)
    body = services.storage.iter_range(key, start, end)
    if share_id is not None:  # a player may hold one response open for the whole recording
        body = services.shares.while_active(share_id, body)
        headers['Cache-Control'] = 'no-store'
    return StreamingResponse(body, status_code=206 if byte_range else 200, media_type=media_type, headers=headers)
