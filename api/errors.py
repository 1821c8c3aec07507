"""Domain errors and invalid requests as JSON, rendered in one place so routes stay straight-line code.

A client's mistake is its own to fix: it gets a 4xx and costs the log at most one line per period, never a
traceback, so no client can flood the log. An unexpected exception is a bug of ours and is left to propagate, to
be logged with its traceback as every server error is.
"""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.http_range import RangeNotSatisfiable
from api.schemas import ErrorOut
from api.throttled_log import ThrottledLog
from services.core.errors import AppError, TooManyRequests, Unauthorized

log = logging.getLogger(__name__)
CLIENT_ERROR_LOG_EVERY_S = 10.0
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    '4XX': {'model': ErrorOut, 'description': 'the request cannot be served as sent; `error` says why'},
    503: {'model': ErrorOut, 'description': 'the database or the storage is unavailable; try again'},
}


def install_error_handler(app: FastAPI) -> None:
    renderer = ErrorRenderer()
    app.add_exception_handler(AppError, renderer.app_error)
    app.add_exception_handler(RequestValidationError, renderer.invalid_request)
    app.add_exception_handler(HTTPException, renderer.http_error)


class ErrorRenderer:
    """One per app, so each app's log throttle is its own."""

    def __init__(self) -> None:
        self.client_errors = ThrottledLog(CLIENT_ERROR_LOG_EVERY_S, log, level=logging.INFO)
        self.server_errors = ThrottledLog(CLIENT_ERROR_LOG_EVERY_S, log)  # an outage answers every request with one

    async def app_error(self, request: Request, error: Exception) -> JSONResponse:
        """`{"error": message, **details}` with the error's own status, and the headers a client needs to retry."""
        assert isinstance(error, AppError)
        self.note(request, error.status_code, error.message)
        headers = {'WWW-Authenticate': 'Bearer'} if isinstance(error, Unauthorized) else {}
        if isinstance(error, TooManyRequests):
            headers['Retry-After'] = str(error.retry_after_s)
        if isinstance(error, RangeNotSatisfiable):
            headers['Content-Range'] = f'bytes */{error.details["size"]}'
        body = {'error': error.message, **error.details}
        return JSONResponse(body, status_code=error.status_code, headers=headers)

    async def invalid_request(self, request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = [plain_problem(problem) for problem in error.errors()]
        self.note(request, 422, problems[0] if problems else 'invalid request')
        return JSONResponse({'error': problems[0] if problems else 'invalid request', 'problems': problems[:10]}, 422)

    async def http_error(self, request: Request, error: Exception) -> Response:
        """What the framework refuses itself (a body that is not UTF-8, say) in the API's shape; other paths (pages,
        NiceGUI's own routes) keep the framework's answer."""
        assert isinstance(error, HTTPException)
        if not request.scope['path'].startswith('/api/') or error.status_code < 400:
            return await http_exception_handler(request, error)
        message = str(error.detail)
        self.note(request, error.status_code, message)
        return JSONResponse({'error': message[:1].lower() + message[1:]}, error.status_code, headers=error.headers)

    def note(self, request: Request, status: int, message: str) -> None:
        """One line, cut short: the path and the message may carry whatever the client sent."""
        line = f'{request.method} {request.scope["path"][:200]} → {status}: {message[:200]}'
        (self.client_errors if status < 500 else self.server_errors).note(line)


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
