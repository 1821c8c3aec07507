"""Single-range parsing for `Range: bytes=…` (RFC 9110); anything unparseable falls back to the whole body."""

import re

from .errors import AppError

_RANGE = re.compile(r'^bytes=(\d*)-(\d*)$')


class RangeNotSatisfiable(AppError):
    status_code = 416


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) to send, or None for the whole body."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ('', ''):
        return None  # multi-range or malformed: serving the full body is allowed
    first, last = match.groups()
    if first == '':
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable('empty suffix range', size=size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f'range starts beyond the {size} bytes of the audio', size=size)
    return start, end
