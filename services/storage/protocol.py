"""Object storage behind one interface: a local folder by default (`local.py`); S3 in `s3.py`."""

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

_KEY_PATTERN = re.compile(r'^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$')
READ_BLOCK = 256 * 1024


def validate_key(key: str) -> str:
    """Keys are built by the services, but a bad one must never escape the storage root."""
    if not _KEY_PATTERN.match(key) or '..' in key.split('/'):
        raise ValueError(f'invalid storage key {key!r}')
    return key


class Storage(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store durably: when this returns, the object survives a crash."""

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        """Store several objects durably at once (all of them, or raise); cheaper per object than `put_bytes`."""

    def put_file(self, key: str, path: Path) -> None: ...

    def copy_to(self, key: str, target: BinaryIO) -> int:
        """Stream the object into `target`; returns the number of bytes written."""

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes `start`..`end` inclusive, in bounded blocks."""

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (a folder, or one whole key)."""

    def list_children(self, prefix: str, *, after: str = '', limit: int = 1000) -> list[str]:
        """The names one level below `prefix` (`recordings/` → recording ids), sorted, starting after `after`."""

    def check(self) -> None:
        """Raise ServiceUnavailable when the storage cannot be used."""

    def direct_url(self, key: str, *, content_type: str, download_name: str | None = None) -> str | None:
        """A URL a browser can fetch the object from without us (e.g. presigned S3), or None to serve it ourselves."""

    def close(self) -> None: ...
