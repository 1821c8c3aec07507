"""The default object storage: a local folder, with every write fsync'd before it counts as stored."""

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import NotFound, ServiceUnavailable
from .protocol import READ_BLOCK, validate_key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda handle: handle.write(data))

    def put_file(self, key: str, path: Path) -> None:
        def copy(handle: BinaryIO) -> None:
            with path.open('rb') as source:
                shutil.copyfileobj(source, handle, READ_BLOCK)

        self._write_atomically(key, copy)

    def _write_atomically(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        """Write a temp file, fsync it, rename it over the key, fsync the folder: whole or absent after a crash."""
        target = self._path(key)
        # Unique per thread and key: two writers of one key (the same bytes, by content addressing) never share it.
        temp = target.with_name(f'.tmp-{target.name}-{os.getpid()}-{threading.get_ident()}')
        try:
            try:
                handle = temp.open('wb')
            except FileNotFoundError:  # the recording's first object: make its folder once, not per chunk
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = temp.open('wb')
            with handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
            _fsync_dir(target.parent)
        except OSError as error:
            with contextlib.suppress(OSError):  # a broken folder must not turn the clear 503 into another error
                temp.unlink(missing_ok=True)
            raise ServiceUnavailable('audio storage is unavailable, please try again shortly') from error

    def copy_to(self, key: str, target: BinaryIO) -> int:
        with self._open(key) as handle:
            written = 0
            while block := handle.read(READ_BLOCK):
                target.write(block)
                written += len(block)
            return written

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        with self._open(key) as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0 and (block := handle.read(min(READ_BLOCK, remaining))):
                remaining -= len(block)
                yield block

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as error:
            raise NotFound('audio not found') from error

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        path = self._path(prefix.rstrip('/'))
        try:
            if path.is_file():
                path.unlink()
                return 1
            if not path.exists():
                return 0
            count = sum(1 for item in path.rglob('*') if item.is_file())
            shutil.rmtree(path, onerror=_gone_is_fine)
        except OSError as error:
            raise ServiceUnavailable('audio storage is unavailable, please try again shortly') from error
        return count

    def list_children(self, prefix: str, *, after: str = '', limit: int = 1000) -> list[str]:
        folder = self._path(prefix.rstrip('/'))
        if not folder.is_dir():
            return []
        return sorted(name for name in (entry.name for entry in folder.iterdir()) if name > after)[:limit]

    def check(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise ServiceUnavailable(f'storage folder {self.root} is not writable')

    def direct_url(self, key: str, *, content_type: str, download_name: str | None = None) -> str | None:
        return None  # the app streams local files through its signed /api URL

    def close(self) -> None:
        pass

    def _open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open('rb')
        except FileNotFoundError as error:
            raise NotFound('audio not found') from error


def _gone_is_fine(_function: object, _path: str, error: tuple[type[BaseException], BaseException, object]) -> None:
    """A file another writer removed while we delete its folder (a refused chunk cleaning up) is already gone."""
    if not isinstance(error[1], FileNotFoundError):
        raise error[1]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
