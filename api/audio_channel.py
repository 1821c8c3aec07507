"""The audio channel: a socket.io namespace on NiceGUI's own websocket that carries chunks as binary events.

A custom binary event keeps the bytes binary (~1 % framing overhead instead of base64's 34 %) and lets
socket.io's acknowledgement be the durable-storage receipt: a handler answers only after the chunk is stored.
The namespace authenticates with a signed upload token rather than through the page's NiceGUI client, so a
recording survives what kills that client: a server restart, or a connection down for longer than the
page's reconnect timeout.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import socketio
from nicegui import run

from api.audio_payloads import ChunkPayload, CreatePayload, FinalizePayload, Payload, StatusPayload, parse_payload
from api.channel_connections import Connection, Connections
from api.throttled_log import ThrottledLog
from services.access.credentials import SIGNED_OUT
from services.access.rate_limit import client_address
from services.container import Services
from services.core.errors import AppError, InvalidInput, ServiceUnavailable, TooManyRequests, Unauthorized
from services.core.models import Recording, RecordingPublic
from services.recordings.chunks import ChunkUpload

log = logging.getLogger(__name__)
NAMESPACE = '/vr'
RETRYABLE = {408, 429, 503}
RETRY_LOG_EVERY_S = 10.0
Answer = dict[str, Any]
P = ParamSpec('P')
R = TypeVar('R')


def public(recording: Recording) -> Answer:
    """Without `audio_url`: the recorder plays nothing, and signing a link must not be able to fail a receipt."""
    return RecordingPublic.model_validate(recording).model_dump(mode='json', exclude={'audio_url'})


async def in_thread(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Service calls block, so they leave the event loop; NiceGUI gives None instead once the app is stopping."""
    result = await run.io_bound(work, *args, **kwargs)
    if result is None:
        raise ServiceUnavailable('the server is shutting down; this will be sent again')
    return result


def peer_address(environ: dict[str, Any], trusted_proxy_count: int) -> str:
    client = environ.get('asgi.scope', {}).get('client')  # engine.io's REMOTE_ADDR is always 127.0.0.1
    forwarded = environ.get('HTTP_X_FORWARDED_FOR')
    return client_address(client[0] if client else None, forwarded, trusted_proxy_count)


class AudioChannel:
    """One method per event; `answer` gives them all the same checks and the same answer shape."""

    def __init__(self, services: Services, sio: socketio.AsyncServer) -> None:
        self.services = services
        self.sio = sio
        self._retry_log = ThrottledLog(RETRY_LOG_EVERY_S, log)
        self.connections = Connections(lambda sid: self.sio.disconnect(sid, namespace=NAMESPACE))

    def close(self) -> None:
        """Chunks still waiting are answered "shutting down" (the browsers resend them after the restart)."""
        self.services.chunk_batches.close()

    def register(self) -> None:
        self.sio.on('connect', self.connect, namespace=NAMESPACE)
        self.sio.on('disconnect', self.disconnected, namespace=NAMESPACE)
        self.services.users.on_revoked(self.connections.sessions_ended)
        self._on('create', CreatePayload, self.create)
        self._on('chunk', ChunkPayload, self.chunk)
        self._on('finalize', FinalizePayload, self.finalize)
        self._on('status', StatusPayload, self.status)

    def _on(
        self, name: str, payload_type: type[Payload], handler: Callable[[uuid.UUID, Payload], Awaitable[Answer]]
    ) -> None:
        async def respond(sid: str, payload: Any = None) -> Answer:
            return await self.answer(name, sid, payload, payload_type, handler)

        self.sio.on(name, respond, namespace=NAMESPACE)

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        services = self.services
        try:
            address = peer_address(environ, services.settings.trusted_proxy_count)
            await services.rate_limits.vr_connects.hit_async(address)
        except TooManyRequests as error:
            raise socketio.exceptions.ConnectionRefusedError(error.message) from None
        grant = services.upload_tokens.verify(auth.get('token') if isinstance(auth, dict) else None)
        if grant is None:
            raise socketio.exceptions.ConnectionRefusedError('invalid or expired upload token; reload the page')
        try:
            await services.users.credentials.check(
                grant.user_id, grant.credential_version, grant.session_id, fresh=True
            )
        except AppError as error:  # signed out (here or everywhere), or the key was rotated, since the page loaded
            raise socketio.exceptions.ConnectionRefusedError(error.message) from None
        self.connections.add(sid, grant)

    async def disconnected(self, sid: str, reason: Any = None) -> None:
        self.connections.remove(sid)

    async def answer(
        self,
        name: str,
        sid: str,
        payload: Any,
        payload_type: type[Payload],
        handler: Callable[[uuid.UUID, Payload], Awaitable[Answer]],
    ) -> Answer:
        """`{'ok': True, ...}`, or a refusal that tells the browser whether sending again can help."""
        try:
            if not isinstance(payload, dict):
                raise InvalidInput('malformed message')
            connection = self.connections.get(sid)
            user_id = connection.grant.user_id
            # Counted before any database read, so a flood costs none; 429 is retryable: the browser backs off.
            await self.services.rate_limits.vr_events.hit_async(user_id)
            await self._still_signed_in(sid, connection, fresh=name == 'create')
            return {'ok': True, **await handler(user_id, parse_payload(payload_type, payload))}
        except AppError as error:
            if isinstance(error, ServiceUnavailable):
                self._retry_log.note(f'{name} failed, the browser will retry: {error.message}')
            retry = error.status_code in RETRYABLE
            return {'ok': False, 'status': error.status_code, 'error': error.message, 'retry': retry, **error.details}
        except Exception:
            log.exception('%s failed unexpectedly', name)
            return {'ok': False, 'status': 500, 'error': 'internal error', 'retry': True}

    async def _still_signed_in(self, sid: str, connection: Connection, *, fresh: bool) -> None:
        """A connection outlives its token's check: each message asks again, of what this process read of the user at
        most `VR_CREDENTIAL_RECHECK_S` ago (a new recording reads afresh). A revoked connection is closed."""
        if not connection.revoked:
            grant = connection.grant
            try:
                await self.services.users.credentials.check(
                    grant.user_id, grant.credential_version, grant.session_id, fresh=fresh
                )
                return
            except Unauthorized:
                self.connections.close(sid, connection)
        # `signed_out`: not a refusal of the audio; the browser keeps it for its next sign-in (upload_session.mjs)
        raise Unauthorized(SIGNED_OUT, signed_out=True)

    async def create(self, user_id: uuid.UUID, payload: CreatePayload) -> Answer:
        if payload.file_size_bytes is not None:  # an import: its chunks are the file's bytes
            recording = await in_thread(
                self.services.imports.create,
                user_id=user_id,
                mime_type=payload.mime_type,
                size_bytes=payload.file_size_bytes,
                title=payload.title,
                modified_at=payload.file_modified_at,
            )
        else:
            recording = await in_thread(
                self.services.recordings.create,
                user_id=user_id,
                mime_type=payload.mime_type,
                title=payload.title,
                title_is_default=payload.title_is_default,
            )
        return {'recording_id': str(recording.id)}

    async def chunk(self, user_id: uuid.UUID, payload: ChunkPayload) -> Answer:
        """Answered once durable. Past `VR_MAX_CHUNKS_IN_FLIGHT` the batches answer "busy" at once: past capacity a
        queue only grows until browsers time out and resend, while the browser keeps the chunk and backs off."""
        upload = ChunkUpload(user_id, payload.recording_id, payload.seq, payload.data)
        receipt = await self.services.chunk_batches.store(upload)
        return {'seq': receipt.seq, 'size': receipt.size}

    async def finalize(self, user_id: uuid.UUID, payload: FinalizePayload) -> Answer:
        with self.services.finalize_slots.taken(user_id):
            recording = await in_thread(
                self.services.finalizer.finalize,
                user_id=user_id,
                recording_id=payload.recording_id,
                chunk_count=payload.chunk_count,
            )
        return {'recording': public(recording)}

    async def status(self, user_id: uuid.UUID, payload: StatusPayload) -> Answer:
        """Lets a recovering page ask what became of a recording it has leftovers of."""
        recording = await in_thread(self.services.recordings.get, user_id=user_id, recording_id=payload.recording_id)
        if recording.original_mime_type is None:
            return {'recording': public(recording)}
        # an import being resumed: the chunks the server holds are not sent again
        stored = await in_thread(self.services.imports.stored_seqs, recording.id)
        return {'recording': public(recording), 'stored_seqs': stored}
