"""Typed domain errors that carry their HTTP status, rendered in one place by the API and the pages."""


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(AppError):
    status_code = 422


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class LimitReached(AppError):
    status_code = 403


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s


class UnsupportedMediaType(AppError):
    status_code = 415


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class MissingChunks(Conflict):
    """Finalize found a gap: the client should resend these seqs."""

    SHOWN = 100  # a crafted chunk_count must not turn into a huge answer

    def __init__(self, missing: list[int]) -> None:
        first = missing[: self.SHOWN]
        shown = ', '.join(map(str, first[:20])) + (' …' if len(missing) > 20 else '')
        super().__init__(f'{len(missing)} chunks missing: {shown}', missing=first, missing_count=len(missing))
        self.missing = first


class ChunkTooLarge(AppError):
    status_code = 413


class AudioProcessingFailed(AppError):
    status_code = 422


class ServiceUnavailable(AppError):
    """A backing service (database, storage) cannot be reached; the request may be retried."""

    status_code = 503


class Busy(ServiceUnavailable):
    """Someone else (another request, instance or the sweeper) is finishing this recording right now."""
