"""The default object storage: a local folder, with every write on disk (fsync, or one syncfs for a batch)
before it counts as stored."""

import contextlib
import ctypes
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from services.core.errors import NotFound, ServiceUnavailable
from services.storage.protocol import READ_BLOCK, validate_key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda handle: handle.write(data))

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        """Two syncs of the whole filesystem for the batch instead of two fsyncs per object: all the temp files'
        data is on disk before any is renamed into place, and the renames are on disk before this returns.

        Renaming only after the first sync matters: a rename over an existing object (a resent chunk) must never
        leave a name pointing at data the disk does not have yet.
        """
        if _syncfs is None:  # not Linux: one object at a time
            for key, data in objects.items():
                self.put_bytes(key, data)
            return
        written: list[tuple[str, Path, Path]] = []
        missed: list[str] = []  # a folder removed meanwhile (its recording deleted or finished): written again alone
        try:
            for key, data in objects.items():
                target = self._path(key)
                temp = _temp_path(target)
                written.append((key, temp, target))
                _write_file(temp, data)
            _syncfs(self.root)
            for key, temp, target in written:
                try:
                    os.replace(temp, target)
                except FileNotFoundError:
                    missed.append(key)
            _syncfs(self.root)
        except OSError as error:
            for _key, temp, _target in written:
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)
            raise ServiceUnavailable('audio storage is unavailable, please try again shortly') from error
        for key in missed:
            self.put_bytes(key, objects[key])

    def put_file(self, key: str, path: Path) -> None:
        def copy(handle: BinaryIO) -> None:
            with path.open('rb') as source:
                shutil.copyfileobj(source, handle, READ_BLOCK)

        self._write_atomically(key, copy)

    def _write_atomically(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        """Write a temp file, fsync it, rename it over the key, fsync the folder: whole or absent after a crash."""
        target = self._path(key)
        temp = _temp_path(target)
        try:
            with os.fdopen(_create(temp), 'wb') as handle:
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


def _temp_path(target: Path) -> Path:
    """Unique per thread and key: two writers of one key (the same bytes, by content addressing) never share it."""
    return target.with_name(f'.tmp-{target.name}-{os.getpid()}-{threading.get_ident()}')


def _create(path: Path) -> int:
    """Create or truncate `path` for writing; the recording's first object makes its folder (once, not per chunk)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)


def _write_file(path: Path, data: bytes) -> None:
    fd = _create(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _load_syncfs() -> Callable[[Path], None] | None:
    """Linux's syncfs(2): flushes one filesystem. Only from Linux 5.8 on does it report a write-back error (a
    failing disk) the way fsync does; on older kernels it could say "done" for data that never reached the disk."""
    if not sys.platform.startswith('linux') or _kernel_version() < (5, 8):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # ctypes lets go of the GIL while the call waits for the disk

    def syncfs(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) != 0:
                number = ctypes.get_errno()
                raise OSError(number, os.strerror(number))
        finally:
            os.close(fd)

    return syncfs


def _kernel_version() -> tuple[int, int]:
    found = re.match(r'(\d+)\.(\d+)', os.uname().release)
    return (int(found[1]), int(found[2])) if found else (0, 0)


_syncfs = _load_syncfs()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
