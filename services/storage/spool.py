"""A local spool in front of remote storage: finalize reads the chunks this instance received from its own disk.

The remote (S3) stays the durable copy and the source of truth; the spool is only a cache. A miss (the
chunk went to another instance, or this one restarted) falls back to the remote. The spool is emptied at
start-up, so a crash can never leave a torn copy behind, and entries of abandoned recordings are swept by age.
"""

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from services.storage.protocol import READ_BLOCK, Storage, validate_key

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 3600.0


class SpooledStorage:
    def __init__(self, remote: Storage, folder: Path, *, max_age_s: float = 24 * 3600) -> None:
        self.remote = remote
        self.folder = folder.resolve()
        self.max_age_s = max_age_s
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._next_sweep = time.monotonic() + SWEEP_EVERY_S

    def put_bytes(self, key: str, data: bytes) -> None:
        self.remote.put_bytes(key, data)
        self._spool(key, data)

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        self.remote.put_many(objects)
        for key, data in objects.items():
            self._spool(key, data)

    def _spool(self, key: str, data: bytes) -> None:
        try:  # best effort and without fsync: the remote already holds the durable copy
            path = self.folder / validate_key(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix='.tmp-')
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
            os.replace(temp_name, path)
        except OSError as error:
            log.debug('could not spool %s: %s', key, error)

    def copy_to(self, key: str, target: BinaryIO) -> int:
        try:
            handle = (self.folder / validate_key(key)).open('rb')
        except FileNotFoundError:
            return self.remote.copy_to(key, target)
        with handle:
            written = 0
            while block := handle.read(READ_BLOCK):
                target.write(block)
                written += len(block)
            return written

    def delete_prefix(self, prefix: str) -> int:
        deleted = self.remote.delete_prefix(prefix)
        spooled = self.folder / validate_key(prefix.rstrip('/'))
        if spooled.is_file():
            spooled.unlink(missing_ok=True)
        else:
            shutil.rmtree(spooled, ignore_errors=True)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            self.sweep()
        return deleted

    def sweep(self) -> None:
        """Forget recordings nobody finalized here for a day: their chunks are still in the remote."""
        cutoff = time.time() - self.max_age_s
        for recording in (self.folder / 'recordings').glob('*'):
            try:
                last_chunk_at = (recording / 'chunks').stat().st_mtime  # a new chunk file touches its folder
            except OSError:
                last_chunk_at = 0.0
            if last_chunk_at < cutoff:
                shutil.rmtree(recording, ignore_errors=True)

    def put_file(self, key: str, path: Path) -> None:
        self.remote.put_file(key, path)

    def iter_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        return self.remote.iter_range(key, start, end)

    def size(self, key: str) -> int:
        return self.remote.size(key)

    def exists(self, key: str) -> bool:
        return self.remote.exists(key)

    def list_children(self, prefix: str, *, after: str = '', limit: int = 1000) -> list[str]:
        return self.remote.list_children(prefix, after=after, limit=limit)

    def check(self) -> None:
        self.remote.check()

    def direct_url(self, key: str, *, content_type: str, download_name: str | None = None) -> str | None:
        return self.remote.direct_url(key, content_type=content_type, download_name=download_name)

    def close(self) -> None:
        self.remote.close()
