"""The REST API beside the pages: thin handlers over the same services the pages use."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .audio import audio_format
from .container import Services
from .errors import (
    AppError,
    ChunkTooLarge,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
)
from .http_range import parse_range
from .models import Recording, RecordingStatus, User
from .recordings import audio_key
from .version import app_version


class StrictBody(BaseModel):
    model_config = ConfigDict(extra='forbid')


class OnboardIn(StrictBody):
    name: str = Field(max_length=1000)


class OnboardOut(BaseModel):
    user_id: uuid.UUID
    name: str
    token: str


class TokenOut(BaseModel):
    token: str


class ProfileOut(BaseModel):
    user_id: uuid.UUID
    name: str
    created_at: datetime
    recording_count: int


class RecordingCreateIn(StrictBody):
    mime_type: str = Field(max_length=100)
    title: str | None = Field(default=None, max_length=1000)


class RecordingPatchIn(StrictBody):
    title: str = Field(max_length=1000)


class RecordingOut(BaseModel):
    id: uuid.UUID
    title: str
    created_at: datetime
    duration_ms: int | None
    size_bytes: int | None
    mime_type: str
    status: RecordingStatus
    error: str | None
    audio_url: str | None


class ChunkOut(BaseModel):
    seq: int
    size: int


class HealthOut(BaseModel):
    status: str
    version: str
    database: str
    storage: str


async def read_limited_body(request: Request, limit: int) -> bytes:
    """Read the body but stop at `limit`, so an oversize upload costs us no more than the limit."""
    declared = request.headers.get('content-length')
    if declared and declared.isdigit() and int(declared) > limit:
        raise ChunkTooLarge(f'the chunk is {declared} bytes; at most {limit} are accepted')
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ChunkTooLarge(f'the chunk is larger than the {limit} bytes accepted')
    return bytes(body)


def install_error_handler(app: FastAPI) -> None:
    async def render(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, AppError)
        headers = {'WWW-Authenticate': 'Bearer'} if isinstance(error, Unauthorized) else {}
        if isinstance(error, TooManyRequests):
            headers['Retry-After'] = str(error.retry_after_s)
        return JSONResponse({'error': error.message, **error.details}, status_code=error.status_code, headers=headers)

    app.add_exception_handler(AppError, render)


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix='/api', tags=['api'])

    def current_user(authorization: Annotated[str | None, Header()] = None) -> User:
        scheme, _, token = (authorization or '').partition(' ')
        if scheme.lower() != 'bearer' or not token.strip():
            raise Unauthorized('missing bearer token')
        user = services.users.authenticate(token.strip())
        services.rate_limiter.hit(user.id)
        return user

    CurrentUser = Annotated[User, Depends(current_user)]

    def public(recording: Recording) -> RecordingOut:
        ready = recording.status == RecordingStatus.READY
        url = services.links.url(recording.id) if ready else None
        return RecordingOut(**recording.model_dump(exclude={'user_id'}), audio_url=url)

    @router.post('/onboard', status_code=201)
    def onboard(body: OnboardIn) -> OnboardOut:
        user, token = services.users.onboard(name=body.name)
        return OnboardOut(user_id=user.id, name=user.name, token=token)

    @router.get('/profile/{user_id}')
    def profile(user_id: uuid.UUID, user: CurrentUser) -> ProfileOut:
        if user_id != user.id:
            raise NotFound('user not found')
        count = services.users.recording_count(user.id)
        return ProfileOut(user_id=user.id, name=user.name, created_at=user.created_at, recording_count=count)

    @router.get('/records/{user_id}')
    def records(
        user_id: uuid.UUID,
        user: CurrentUser,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        q: Annotated[str, Query(max_length=200, description='search in titles')] = '',
    ) -> list[RecordingOut]:
        if user_id != user.id:
            raise NotFound('user not found')
        found = services.recordings.list(user_id=user.id, limit=limit, offset=offset, search=q)
        return [public(r) for r in found]

    @router.post('/token/rotate')
    def rotate_token(user: CurrentUser) -> TokenOut:
        """A new token for the caller; the one used for this call is revoked."""
        return TokenOut(token=services.users.rotate_token(user.id))

    @router.post('/recordings', status_code=201)
    def create_recording(body: RecordingCreateIn, user: CurrentUser) -> RecordingOut:
        return public(services.recordings.create(user_id=user.id, mime_type=body.mime_type, title=body.title))

    @router.put('/recordings/{recording_id}/chunks/{seq}')
    async def put_chunk(recording_id: uuid.UUID, seq: int, request: Request, user: CurrentUser) -> ChunkOut:
        content_type = request.headers.get('content-type', 'application/octet-stream').split(';')[0].strip().lower()
        if content_type != 'application/octet-stream' and not content_type.startswith('audio/'):
            raise UnsupportedMediaType(f'send the chunk as raw bytes (application/octet-stream), not {content_type}')
        data = await read_limited_body(request, services.settings.max_chunk_bytes)
        receipt = await run_in_threadpool(
            lambda: services.chunks.add_chunk(user_id=user.id, recording_id=recording_id, seq=seq, data=data)
        )
        return ChunkOut(seq=receipt.seq, size=receipt.size)

    @router.post('/recordings/{recording_id}/finalize')
    def finalize(recording_id: uuid.UUID, user: CurrentUser) -> RecordingOut:
        return public(services.finalizer.finalize(user_id=user.id, recording_id=recording_id))

    @router.get('/recordings/{recording_id}')
    def get_recording(recording_id: uuid.UUID, user: CurrentUser) -> RecordingOut:
        return public(services.recordings.get(user_id=user.id, recording_id=recording_id))

    @router.patch('/recordings/{recording_id}')
    def rename(recording_id: uuid.UUID, body: RecordingPatchIn, user: CurrentUser) -> RecordingOut:
        return public(services.recordings.rename(user_id=user.id, recording_id=recording_id, title=body.title))

    @router.delete('/recordings/{recording_id}', status_code=204)
    def delete(recording_id: uuid.UUID, user: CurrentUser) -> Response:
        services.recordings.delete(user_id=user.id, recording_id=recording_id)
        return Response(status_code=204)

    @router.get('/recordings/{recording_id}/audio', response_model=None)
    def audio(
        recording_id: uuid.UUID,
        request: Request,
        expires: int | None = None,
        signature: str | None = None,
        download: bool = False,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        user_id = _audio_owner(recording_id, expires, signature, authorization)
        recording = services.recordings.get(user_id=user_id, recording_id=recording_id)
        if recording.status != RecordingStatus.READY:
            raise NotFound('the audio is not ready yet')
        return stream_audio(recording, request.headers.get('range'), download)

    def _audio_owner(
        recording_id: uuid.UUID, expires: int | None, signature: str | None, authorization: str | None
    ) -> uuid.UUID:
        if expires is not None and signature is not None:
            if not services.links.signer.verify(recording_id, expires, signature):
                raise Forbidden('this audio link has expired or is not valid')
            return services.recordings.owner_of(recording_id)
        return current_user(authorization).id

    def stream_audio(recording: Recording, range_header: str | None, download: bool) -> Response:
        key = audio_key(recording)
        size = services.storage.size(key)
        byte_range = parse_range(range_header, size)
        start, end = byte_range or (0, size - 1)
        fmt = audio_format(recording.mime_type)
        headers = {'Accept-Ranges': 'bytes', 'Content-Length': str(end - start + 1), 'Cache-Control': 'private'}
        if byte_range:
            headers['Content-Range'] = f'bytes {start}-{end}/{size}'
        if download:
            headers['Content-Disposition'] = f'attachment; filename="recording-{recording.id}.{fmt.extension}"'
        return StreamingResponse(
            services.storage.iter_range(key, start, end),
            status_code=206 if byte_range else 200,
            media_type=fmt.mime_type,
            headers=headers,
        )

    @router.get('/healthz')
    def healthz(response: Response) -> HealthOut:
        checks = {'database': services.database.check, 'storage': services.storage.check}
        results = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = 'ok'
            except Exception as error:  # health reports every failure, whatever its kind
                results[name] = f'error: {getattr(error, "message", None) or type(error).__name__}'
        healthy = all(value == 'ok' for value in results.values())
        response.status_code = 200 if healthy else 503
        return HealthOut(status='ok' if healthy else 'unavailable', version=app_version(), **results)

    return router
