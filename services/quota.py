"""Per-user storage quota, checked as chunks arrive so one user cannot fill the disk or the bucket.

The usage is read from the database (finished files plus chunks still held) and then counted forward in memory
for a few seconds, so the check costs no query per chunk; with several instances each re-reads the truth often.
"""

import threading
import time
import uuid

from sqlmodel import func, select

from .database import Database
from .errors import LimitReached
from .models import Chunk, Recording

REFRESH_AFTER_S = 10.0


def _gib(size: int) -> str:
    return f'{size / 2**30:.1f} GB'


class StorageQuota:
    def __init__(self, *, database: Database, max_bytes_per_user: int) -> None:
        self.database = database
        self.max_bytes_per_user = max_bytes_per_user
        self._usage: dict[uuid.UUID, tuple[float, int]] = {}  # user -> (read at, bytes)
        self._lock = threading.Lock()

    def reserve(self, user_id: uuid.UUID, size: int) -> None:
        """Count `size` more bytes for the user, or refuse them in plain words when the quota is full."""
        now = time.monotonic()
        with self._lock:
            read_at, used = self._usage.get(user_id, (0.0, 0))
        if now - read_at > REFRESH_AFTER_S:
            read_at, used = now, self.used_bytes(user_id)
        if used + size > self.max_bytes_per_user:
            raise LimitReached(
                f'your storage is full ({_gib(used)} of {_gib(self.max_bytes_per_user)}): '
                'delete some recordings to record more'
            )
        with self._lock:
            self._usage[user_id] = (read_at, used + size)
            if len(self._usage) > 10_000:  # forget users who have not recorded lately
                self._usage = {uid: v for uid, v in self._usage.items() if now - v[0] <= REFRESH_AFTER_S}

    def used_bytes(self, user_id: uuid.UUID) -> int:
        files = select(func.coalesce(func.sum(Recording.size_bytes), 0)).where(Recording.user_id == user_id)
        chunks = (
            select(func.coalesce(func.sum(Chunk.size), 0))
            .join(Recording, Recording.id == Chunk.recording_id)  # type: ignore[arg-type]
            .where(Recording.user_id == user_id)
        )
        with self.database.session() as session:
            return int(session.exec(files).one() or 0) + int(session.exec(chunks).one() or 0)
