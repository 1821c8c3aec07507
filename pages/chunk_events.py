"""The audio channel: a socket.io namespace on NiceGUI's own websocket that carries chunks as binary events.

A custom binary event keeps the bytes binary (~1 % framing overhead instead of base64's 34 %) and lets
socket.io's acknowledgement be the durable-storage receipt: a handler answers only after the chunk is stored.
The namespace authenticates with a signed upload token rather than through the page's NiceGUI client, so a
recording survives what kills that client: a server restart, or a connection down for longer than the
page's reconnect timeout.
"""

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from nicegui import core, run

from services.container import Services
from services.errors import AppError, InvalidInput, NotFound, ServiceUnavailable, TooManyRequests
from services.models import Recording
from services.rate_limit import client_address

log = logging.getLogger(__name__)
NAMESPACE = '/vr'
RETRYABLE = {408, 429, 503}
RECHECK_CREDENTIALS_S = 15.0
Handler = Callable[[uuid.UUID, dict[str, Any]], Awaitable[dict[str, Any]]]


def recording_summary(recording: Recording) -> dict[str, Any]:
    return {
        'id': str(recording.id),
        'title': recording.title,
        'duration_ms': recording.duration_ms,
        'size_bytes': recording.size_bytes,
        'status': recording.status.value,
    }


def _recording_id(payload: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(payload.get('recording_id')))
    except ValueError as error:
        raise NotFound('recording not found') from error


def _whole_number(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f'{name} must be a whole number')
    return value


def register_chunk_events(services: Services) -> None:
    sio = core.sio

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        client = environ.get('asgi.scope', {}).get('client')  # engine.io's REMOTE_ADDR is always 127.0.0.1
        peer, forwarded = client[0] if client else None, environ.get('HTTP_X_FORWARDED_FOR')
        address = client_address(peer, forwarded, services.settings.trusted_proxy_count)
        try:
            await services.rate_limits.vr_connects.hit_async(address)
        except TooManyRequests as error:
            raise socketio.exceptions.ConnectionRefusedError(error.message) from None
        grant = services.upload_tokens.verify(auth.get('token') if isinstance(auth, dict) else None)
        if grant is None:
            raise socketio.exceptions.ConnectionRefusedError('invalid or expired upload token; reload the page')
        try:
            await run.io_bound(services.users.current, grant.user_id, grant.credential_version)
        except AppError as error:  # signed out everywhere, or the key was rotated, since the page was loaded
            raise socketio.exceptions.ConnectionRefusedError(error.message) from None
        session = {'user_id': grant.user_id, 'grant': grant, 'checked_at': time.monotonic(), 'address': address}
        await sio.save_session(sid, session, namespace=NAMESPACE)

    sio.on('connect', connect, namespace=NAMESPACE)

    async def still_signed_in(sid: str) -> uuid.UUID:
        """A connection outlives its token's check: look again every few seconds, so a sign-out ends it too."""
        session = await sio.get_session(sid, namespace=NAMESPACE)
        if time.monotonic() - session['checked_at'] > RECHECK_CREDENTIALS_S:
            grant = session['grant']
            await run.io_bound(services.users.current, grant.user_id, grant.credential_version)
            session['checked_at'] = time.monotonic()
        return session['user_id']

    def event(name: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            async def respond(sid: str, payload: Any = None) -> dict[str, Any]:
                try:
                    if not isinstance(payload, dict):
                        raise InvalidInput('malformed message')
                    user_id = await still_signed_in(sid)
                    await services.rate_limits.vr_events.hit_async(user_id)  # 429 is retryable: the browser backs off
                    return {'ok': True, **await handler(user_id, payload)}
                except AppError as error:
                    if isinstance(error, ServiceUnavailable):
                        log.warning('%s failed, the browser will retry: %s', name, error.message)
                    return {
                        'ok': False,
                        'status': error.status_code,
                        'error': error.message,
                        'retry': error.status_code in RETRYABLE,
                        **error.details,
                    }
                except Exception:
                    log.exception('%s failed unexpectedly', name)
                    return {'ok': False, 'status': 500, 'error': 'internal error', 'retry': True}

            sio.on(name, respond, namespace=NAMESPACE)
            return handler

        return decorate

    @event('create')
    async def create(user_id: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any]:
        mime_type, title = payload.get('mime_type'), payload.get('title')
        if not isinstance(mime_type, str) or not isinstance(title, str | None):
            raise InvalidInput('mime_type and title must be text')
        recording = await run.io_bound(services.recordings.create, user_id=user_id, mime_type=mime_type, title=title)
        return {'recording_id': str(recording.id)}

    in_flight = 0

    @event('chunk')
    async def chunk(user_id: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight
        seq, data = _whole_number(payload.get('seq'), 'seq'), payload.get('data')
        if not isinstance(data, bytes):
            raise InvalidInput('a chunk needs binary data')
        if in_flight >= services.settings.max_chunks_in_flight:
            # Shed load: past capacity, a queue only grows until browsers time out and resend. An early
            # "busy" keeps the server at full throughput; the browser keeps the chunk and retries with backoff.
            raise ServiceUnavailable('the server is busy; the chunk will be sent again')
        in_flight += 1
        try:
            receipt = await run.io_bound(
                services.chunks.add_chunk, user_id=user_id, recording_id=_recording_id(payload), seq=seq, data=data
            )
        finally:
            in_flight -= 1
        return {'seq': receipt.seq, 'size': receipt.size}

    @event('finalize')
    async def finalize(user_id: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any]:
        count = _whole_number(payload.get('chunk_count'), 'chunk_count')
        recording = await run.io_bound(
            services.finalizer.finalize, user_id=user_id, recording_id=_recording_id(payload), chunk_count=count
        )
        return {'recording': recording_summary(recording)}

    @event('status')
    async def status(user_id: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any]:
        """Lets a recovering page ask what became of a recording it has leftovers of."""
        recording = await run.io_bound(services.recordings.get, user_id=user_id, recording_id=_recording_id(payload))
        return {'recording': recording_summary(recording)}
