"""Single-range parsing for `Range: bytes=…` (RFC 9110); anything unparseable falls back to the whole body."""

import re

from services.core.errors import AppError

_RANGE = re.compile(r'bytes=([0-9]*)-([0-9]*)')  # RFC 9110's DIGIT is ASCII; `\d` would take any script's digits
# No file of ours comes near an exabyte, so a position with more digits only means "past the end", and is never
# handed to int(): past 4300 digits that raises, and a long one costs quadratic time.
MAX_DIGITS = 18
BEYOND_ANY_SIZE = 10**MAX_DIGITS


class RangeNotSatisfiable(AppError):
    status_code = 416


def parse_range(header: str | None, size: int, *, if_range: str | None = None) -> tuple[int, int] | None:
    """The inclusive (start, end) to send, or None for the whole body.

    We send no ETag or Last-Modified, so an If-Range validator can never match ours: its Range is then ignored.
    """
    if not header or if_range is not None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.groups() == ('', ''):
        return None  # multi-range or malformed: serving the full body is allowed
    first, last = match.groups()
    if first == '':
        length = position(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable('empty suffix range', size=size)
        return max(size - length, 0), size - 1
    start = position(first)
    end = min(position(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(f'range starts beyond the {size} bytes of the audio', size=size)
    return start, end


def position(digits: str) -> int:
    """A byte position as sent; leading zeros are allowed, any value past every file's end reads as one."""
    significant = digits.lstrip('0')
    return int(significant or '0') if len(significant) <= MAX_DIGITS else BEYOND_ANY_SIZE
