"""The REST API beside the pages: thin handlers over the same services the pages use."""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .audio.exports import MP3_TYPE, mp3_key
from .audio.formats import audio_format
from .container import Services
from .errors import AppError, ChunkTooLarge, Forbidden, NotFound, TooManyRequests, Unauthorized, UnsupportedMediaType
from .http_range import parse_range
from .models import Recording, RecordingStatus, User
from .rate_limit import client_address
from .recordings import audio_key, download_name
from .transcripts.files import FileKind
from .transcripts.search import SnippetPiece
from .transcripts.shapes import TranscriptPublic
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


class LinkOut(BaseModel):
    url: str


class ShareIn(StrictBody):
    expires_in_s: int = Field(default=7 * 24 * 3600, ge=300, le=30 * 24 * 3600)


class ShareOut(BaseModel):
    id: uuid.UUID
    url: str
    expires_at: datetime


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


class RecordingHitOut(RecordingOut):
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

    async def render_invalid(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = [plain_problem(problem) for problem in error.errors()]
        return JSONResponse({'error': problems[0] if problems else 'invalid request', 'problems': problems[:10]}, 422)

    app.add_exception_handler(AppError, render)
    app.add_exception_handler(RequestValidationError, render_invalid)


def plain_problem(problem: Mapping[str, Any]) -> str:
    """One validation problem as a sentence a person can act on, naming the field, not the framework's jargon."""
    field = str(problem.get('loc', ('', ''))[-1]) if len(problem.get('loc', ())) > 1 else 'the request'
    kind = problem.get('type', '')
    if kind == 'json_invalid':
        return 'the request body is not valid JSON'
    if kind == 'extra_forbidden':
        return f'unknown field {field!r}'
    if kind == 'missing':
        return f'{field} is required'
    if kind in ('model_attributes_type', 'dict_type'):
        return 'the request body must be a JSON object'
    if kind.startswith('uuid'):
        return f'{field} must be an id like 123e4567-e89b-12d3-a456-426614174000'
    reason = str(problem.get('msg', 'is not valid'))
    return f'{field}: {reason[:1].lower()}{reason[1:]}'


def create_router(services: Services) -> APIRouter:
    router = APIRouter(prefix='/api', tags=['api'])

    def current_user(authorization: Annotated[str | None, Header()] = None) -> User:
        scheme, _, token = (authorization or '').partition(' ')
        if scheme.lower() != 'bearer' or not token.strip():
            raise Unauthorized('missing bearer token')
        user = services.users.authenticate(token.strip())
        services.rate_limits.api.hit(user.id)
        return user

    CurrentUser = Annotated[User, Depends(current_user)]

    def public(recording: Recording) -> RecordingOut:
        ready = recording.status == RecordingStatus.READY
        url = services.links.url(recording) if ready else None
        return RecordingOut(**recording.model_dump(exclude={'user_id'}), audio_url=url)

    @router.post('/onboard', status_code=201)
    def onboard(body: OnboardIn, request: Request) -> OnboardOut:
        peer = request.client.host if request.client else None
        forwarded = request.headers.get('x-forwarded-for')
        services.rate_limits.onboard.hit(client_address(peer, forwarded, services.settings.trusted_proxy_count))
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
        q: Annotated[str, Query(max_length=200, description='search in titles and transcripts')] = '',
    ) -> list[RecordingHitOut] | list[RecordingOut]:
        if user_id != user.id:
            raise NotFound('user not found')
        if q.strip():  # ranked full-text hits first, then titles that merely contain q
            hits = services.transcripts.search(user_id=user.id, query=q, limit=limit, offset=offset)
            return [
                RecordingHitOut(**public(hit.recording).model_dump(), snippet=hit.snippet, match_ms=hit.match_ms)
                for hit in hits
            ]
        found = services.recordings.list(user_id=user.id, limit=limit, offset=offset)
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
        format: Literal['original', 'mp3'] = 'original',
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        user_id = _audio_owner(recording_id, expires, signature, authorization)
        recording = services.recordings.get(user_id=user_id, recording_id=recording_id)
        if recording.status != RecordingStatus.READY:
            raise NotFound('the audio is not ready yet')
        mp3 = format == 'mp3'
        if mp3 and not services.storage.exists(mp3_key(recording)):
            raise NotFound('there is no MP3 of this recording yet: POST /api/recordings/{id}/mp3 makes one')
        return stream_audio(recording, request.headers.get('range'), download, mp3=mp3)

    @router.post('/recordings/{recording_id}/mp3')
    def make_mp3(recording_id: uuid.UUID, user: CurrentUser) -> LinkOut:
        """Makes the MP3 copy (once; later calls return at once) and answers with its download URL."""
        recording = services.exports.mp3(user_id=user.id, recording_id=recording_id)
        return LinkOut(url=services.links.url(recording, download=True, mp3=True))

    @router.get(
        '/recordings/{recording_id}/transcript',
        response_model=TranscriptPublic,
        responses={200: {'content': {'text/plain': {}, 'text/vtt': {}}}},
    )
    def transcript(
        recording_id: uuid.UUID,
        user: CurrentUser,
        format: Annotated[FileKind | None, Query(description='a file: txt, srt or vtt subtitles')] = None,
    ) -> TranscriptPublic | Response:
        """State, progress and the words with their times; with `format`, the finished transcript as a file."""
        if format is None:
            return services.transcripts.get(user_id=user.id, recording_id=recording_id)
        found = services.transcripts.file(user_id=user.id, recording_id=recording_id, kind=format)
        disposition = f'attachment; filename="{found.name}"'
        return Response(found.content, media_type=found.media_type, headers={'Content-Disposition': disposition})

    @router.post('/recordings/{recording_id}/transcript', status_code=202)
    def transcribe_again(recording_id: uuid.UUID, user: CurrentUser) -> TranscriptPublic:
        """Queue the recording's transcript to be made again."""
        return services.transcripts.transcribe_again(user_id=user.id, recording_id=recording_id)

    @router.post('/recordings/{recording_id}/shares', status_code=201)
    def share(recording_id: uuid.UUID, body: ShareIn, user: CurrentUser) -> ShareOut:
        created = services.shares.create(
            user_id=user.id, recording_id=recording_id, lifetime=timedelta(seconds=body.expires_in_s)
        )
        return ShareOut(id=created.id, url=f'/share/{created.id}', expires_at=created.expires_at)

    @router.get('/recordings/{recording_id}/shares')
    def shares(recording_id: uuid.UUID, user: CurrentUser) -> list[ShareOut]:
        found = services.shares.active(user_id=user.id, recording_id=recording_id)
        return [ShareOut(id=s.id, url=f'/share/{s.id}', expires_at=s.expires_at) for s in found]

    @router.delete('/recordings/{recording_id}/shares/{share_id}', status_code=204)
    def revoke_share(recording_id: uuid.UUID, share_id: uuid.UUID, user: CurrentUser) -> Response:
        services.shares.revoke(user_id=user.id, recording_id=recording_id, share_id=share_id)
        return Response(status_code=204)

    @router.get('/shares/{share_id}/audio', response_model=None)
    def shared_audio(share_id: uuid.UUID, request: Request) -> Response:
        """A share link's audio, checked against the database on every request, so revoking it stops it at once."""
        _share, recording = services.shares.resolve(share_id)
        return stream_audio(recording, request.headers.get('range'), False, mp3=False, share_id=share_id)

    def _audio_owner(
        recording_id: uuid.UUID, expires: int | None, signature: str | None, authorization: str | None
    ) -> uuid.UUID:
        if expires is not None and signature is not None:
            if not services.links.signer.verify(recording_id, expires, signature):
                raise Forbidden('this audio link has expired or is not valid')
            return services.recordings.owner_of(recording_id)
        return current_user(authorization).id

    def stream_audio(
        recording: Recording, range_header: str | None, download: bool, *, mp3: bool, share_id: uuid.UUID | None = None
    ) -> Response:
        key = mp3_key(recording) if mp3 else audio_key(recording)
        size = services.storage.size(key)
        byte_range = parse_range(range_header, size)
        start, end = byte_range or (0, size - 1)
        media_type = MP3_TYPE if mp3 else audio_format(recording.mime_type).mime_type
        headers = {'Accept-Ranges': 'bytes', 'Content-Length': str(end - start + 1), 'Cache-Control': 'private'}
        if byte_range:
            headers['Content-Range'] = f'bytes {start}-{end}/{size}'
        if download:
            headers['Content-Disposition'] = f'attachment; filename="{download_name(recording, mp3=mp3)}"'
        body = services.storage.iter_range(key, start, end)
        if share_id is not None:  # a player may hold one response open for the whole recording
            body = services.shares.while_active(share_id, body)
            headers['Cache-Control'] = 'no-store'
        return StreamingResponse(
            body,
            status_code=206 if byte_range else 200,
            media_type=media_type,
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
