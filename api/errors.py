"""Domain errors and invalid requests as JSON, rendered in one place so routes stay straight-line code."""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import AppError, TooManyRequests, Unauthorized


def install_error_handler(app: FastAPI) -> None:
    app.add_exception_handler(AppError, render_app_error)
    app.add_exception_handler(RequestValidationError, render_invalid_request)


async def render_app_error(_request: Request, error: Exception) -> JSONResponse:
    """`{"error": message, **details}` with the error's own status, and the headers a client needs to retry."""
    assert isinstance(error, AppError)
    headers = {'WWW-Authenticate': 'Bearer'} if isinstance(error, Unauthorized) else {}
    if isinstance(error, TooManyRequests):
        headers['Retry-After'] = str(error.retry_after_s)
    return JSONResponse({'error': error.message, **error.details}, status_code=error.status_code, headers=headers)


async def render_invalid_request(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [plain_problem(problem) for problem in error.errors()]
    return JSONResponse({'error': problems[0] if problems else 'invalid request', 'problems': problems[:10]}, 422)


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
