"""Recordings: list and search, create, upload chunks, finalize, read, rename, delete."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.bodies import read_limited_body
from api.deps import CurrentUser, ServicesDep
from api.schemas import MAX_SEQ, ChunkOut, RecordingCreateIn, RecordingHit, RecordingPatchIn
from services.access.audio_links import AudioLinks, stored_file
from services.container import Services
from services.core.errors import NotFound, UnsupportedMediaType
from services.core.models import Recording, RecordingPublic, User
from services.recordings.chunks import ChunkUpload
from services.recordings.download_names import content_disposition
from services.recordings.lifecycle import is_playable
from services.recordings.tags import TagCount

router = APIRouter()
MAX_OFFSET = 1_000_000  # far past any user's recordings; a bigger one is a mistake (or a probe), not a page
CHUNK_BODY = {  # read raw from the request, so FastAPI cannot document it on its own
    'requestBody': {
        'required': True,
        'content': {'application/octet-stream': {'schema': {'type': 'string', 'format': 'binary'}}},
    }
}


def recording_public(recording: Recording, links: AudioLinks) -> RecordingPublic:
    """The row as its owner sees it; the audio URL only once there is audio to play."""
    url = links.url(recording) if is_playable(recording.status) else None
    return RecordingPublic(**recording.model_dump(exclude={'user_id'}), audio_url=url)


Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
SearchQuery = Annotated[str, Query(max_length=200, description='search in titles and transcripts')]
FavouriteFilter = Annotated[bool, Query(description='true: starred recordings only')]
TagFilter = Annotated[str | None, Query(max_length=200, description='only recordings with this tag (any case)')]


@router.get('/records/{user_id}')
def records(
    user_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    limit: Limit = 50,
    offset: Offset = 0,
    q: SearchQuery = '',
    favourite: FavouriteFilter = False,
    tag: TagFilter = None,
) -> list[RecordingHit] | list[RecordingPublic]:
    if user_id != user.id:
        raise NotFound('user not found')
    return own_recordings(user, services, limit, offset, q, favourite, tag)


@router.get('/recordings')
def recordings(
    user: CurrentUser,
    services: ServicesDep,
    limit: Limit = 50,
    offset: Offset = 0,
    q: SearchQuery = '',
    favourite: FavouriteFilter = False,
    tag: TagFilter = None,
) -> list[RecordingHit] | list[RecordingPublic]:
    """The caller's recordings, as `/records/{user_id}` lists them."""
    return own_recordings(user, services, limit, offset, q, favourite, tag)


@router.get('/tags')
def tags(user: CurrentUser, services: ServicesDep) -> list[TagCount]:
    """Every tag on the caller's recordings, with how many carry it, alphabetical."""
    return services.recordings.tags(user_id=user.id)


def own_recordings(
    user: User, services: Services, limit: int, offset: int, q: str, favourite: bool, tag: str | None
) -> list[RecordingHit] | list[RecordingPublic]:
    """Newest first; with `q`, ranked full-text hits first, then titles that merely contain q; filtered either way."""
    if q.strip():
        hits = services.transcripts.search(
            user_id=user.id, query=q, limit=limit, offset=offset, favourite=favourite, tag=tag
        )
        return [
            RecordingHit(
                **recording_public(hit.recording, services.links).model_dump(),
                snippet=hit.snippet,
                match_ms=hit.match_ms,
            )
            for hit in hits
        ]
    found = services.recordings.list(user_id=user.id, limit=limit, offset=offset, favourite=favourite, tag=tag)
    return [recording_public(r, services.links) for r in found]


@router.post('/recordings', status_code=201)
def create_recording(body: RecordingCreateIn, user: CurrentUser, services: ServicesDep) -> RecordingPublic:
    if body.file_size_bytes is not None:  # an import: its chunks are the file's bytes
        created = services.imports.create(
            user_id=user.id,
            mime_type=body.mime_type,
            size_bytes=body.file_size_bytes,
            title=body.title,
            modified_at=body.file_modified_at,
        )
    else:
        created = services.recordings.create(user_id=user.id, mime_type=body.mime_type, title=body.title)
    return recording_public(created, services.links)


@router.put('/recordings/{recording_id}/chunks/{seq}', openapi_extra=CHUNK_BODY)
async def put_chunk(
    recording_id: uuid.UUID,
    seq: Annotated[int, Path(ge=0, le=MAX_SEQ)],
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
) -> ChunkOut:
    content_type = request.headers.get('content-type', 'application/octet-stream').split(';')[0].strip().lower()
    if content_type != 'application/octet-stream' and not content_type.startswith('audio/'):
        raise UnsupportedMediaType(f'send the chunk as raw bytes (application/octet-stream), not {content_type}')
    data = await read_limited_body(request, services.settings.max_chunk_bytes)
    receipt = await services.chunk_batches.store(ChunkUpload(user.id, recording_id, seq, data))  # holds no thread
    return ChunkOut(seq=receipt.seq, size=receipt.size)


@router.post('/recordings/{recording_id}/finalize')
def finalize(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> RecordingPublic:
    with services.finalize_slots.taken(user.id):
        finalized = services.finalizer.finalize(user_id=user.id, recording_id=recording_id)
    return recording_public(finalized, services.links)


@router.get('/recordings/{recording_id}/original', response_class=StreamingResponse)
def original(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> StreamingResponse:
    """An imported file as it came, for "Download the original" (recorded audio: its one file)."""
    recording = services.recordings.get(user_id=user.id, recording_id=recording_id)
    if not is_playable(recording.status):
        raise NotFound('the audio is not ready yet')
    key, media_type, name = stored_file(services.storage, recording, 'imported')
    size = services.storage.size(key)
    headers = {'Content-Length': str(size), 'Content-Disposition': content_disposition(name)}
    return StreamingResponse(services.storage.iter_range(key, 0, size - 1), media_type=media_type, headers=headers)


@router.get('/recordings/{recording_id}')
def get_recording(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> RecordingPublic:
    return recording_public(services.recordings.get(user_id=user.id, recording_id=recording_id), services.links)


@router.patch('/recordings/{recording_id}')
def change(
    recording_id: uuid.UUID, body: RecordingPatchIn, user: CurrentUser, services: ServicesDep
) -> RecordingPublic:
    """Rename, star or tag: the fields given change together, or none does."""
    changed = services.recordings.update(
        user_id=user.id, recording_id=recording_id, title=body.title, favourite=body.favourite, tags=body.tags
    )
    return recording_public(changed, services.links)


@router.delete('/recordings/{recording_id}', status_code=204)
def delete(recording_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Response:
    services.recordings.delete(user_id=user.id, recording_id=recording_id)
    return Response(status_code=204)
