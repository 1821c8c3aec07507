"""HTTP guards around the whole app (API, pages and NiceGUI's own routes): a cap on every request body and
security headers on every response. Pure ASGI, so a body is counted as it streams in, never buffered first."""

import json
import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.nicegui_internals import SOCKET_PREFIX, socket_message_limit
from services.container import Services

log = logging.getLogger(__name__)
CHUNK_PATH = re.compile(r'^/api/recordings/[^/]+/chunks/[^/]+$')


class RequestBodyLimit:
    """Answers 413 as soon as Content-Length or the bytes received so far pass the route's cap, reading no further.

    The app behind it sees a disconnect instead of the rest of the body, and its own answer is dropped.
    """

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope['method'], scope['path'])
        declared = dict(scope['headers']).get(b'content-length', b'')
        if declared.isdigit() and int(declared) > limit:
            await refuse(send, limit)
            return
        received, started, refused = 0, False, False

        async def capped_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {'type': 'http.disconnect'}
            message = await receive()
            received += len(message.get('body', b''))
            if message['type'] == 'http.request' and received > limit:
                refused = True
                if not started:
                    await refuse(send, limit)
                return {'type': 'http.disconnect'}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message['type'] == 'http.response.start'
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            log.debug('the app gave up on a body cut off at %d bytes', limit)


async def refuse(send: Send, limit: int) -> None:
    body = json.dumps({'error': f'The request body is too large: at most {limit} bytes are accepted.'}).encode()
    headers = [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode())]
    await send({'type': 'http.response.start', 'status': 413, 'headers': headers})
    await send({'type': 'http.response.body', 'body': body})


class SecurityHeaders:
    """Adds headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def content_security_policy(audio_origin: str | None) -> str:
    """NiceGUI renders with inline scripts and styles and compiles Vue templates at run time (`unsafe-eval`);
    everything else comes from this origin, except presigned audio, which the browser fetches from S3 itself."""
    s3 = f' {audio_origin}' if audio_origin else ''
    return '; '.join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{s3}",
            f"media-src 'self' blob:{s3}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def audio_origin(services: Services) -> str | None:
    """Where presigned audio URLs point (S3 or its public endpoint, in the bucket's addressing style), if anywhere."""
    try:
        url = services.storage.direct_url('csp-probe', content_type='audio/webm')
    except Exception:  # a storage that cannot presign serves its audio through the app
        return None
    if not url:
        return None
    parts = urlsplit(url)
    return f'{parts.scheme}://{parts.netloc}'


def install(app: FastAPI, services: Services) -> None:
    """The headers go outermost, so even the body cap's 413 carries them."""
    settings = services.settings

    def limit_for(method: str, path: str) -> int:
        if method == 'PUT' and CHUNK_PATH.match(path):
            return settings.max_chunk_bytes
        if path.startswith(SOCKET_PREFIX):  # long-polling carries whole chunks; engine.io has its own cap
            return socket_message_limit()
        return settings.max_json_body_bytes

    app.add_middleware(RequestBodyLimit, limit_for=limit_for)
    headers = {
        'Content-Security-Policy': content_security_policy(audio_origin(services)),
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'same-origin',
    }
    app.add_middleware(SecurityHeaders, headers=headers)
