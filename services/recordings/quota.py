"""Per-user storage quota, checked as chunks arrive so one user cannot fill the disk or the bucket. The files made
from a recording count too: its MP3 copy is checked against the quota before it is made.

The usage is read from the database (finished files plus chunks still held) and then counted forward in memory
for a few seconds, so the check costs no query per chunk; with several instances each re-reads the truth often.
"""

import threading
import time
import uuid

from sqlalchemy import Table, bindparam, func, select

from services.core.database import Database
from services.core.errors import LimitReached
from services.core.models import Chunk, Recording

REFRESH_AFTER_S = 30.0
_RECORDINGS: Table = Recording.__table__  # type: ignore[attr-defined]
_CHUNKS: Table = Chunk.__table__  # type: ignore[attr-defined]
# Built once: every recording user's usage is re-read every REFRESH_AFTER_S.
_FILE_BYTES = select(
    func.coalesce(func.sum(func.coalesce(_RECORDINGS.c.size_bytes, 0) + func.coalesce(_RECORDINGS.c.mp3_bytes, 0)), 0)
).where(_RECORDINGS.c.user_id == bindparam('user_id'))
_CHUNK_BYTES = (
    select(func.coalesce(func.sum(_CHUNKS.c.size), 0))
    .select_from(_CHUNKS.join(_RECORDINGS, _RECORDINGS.c.id == _CHUNKS.c.recording_id))
    .where(_RECORDINGS.c.user_id == bindparam('user_id'))
)


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

    def check_room(self, user_id: uuid.UUID, size: int, what: str) -> None:
        """Refuse to make `what` (about `size` bytes) when it would not fit; read afresh, it is not counted forward."""
        used = self.used_bytes(user_id)
        if used + size > self.max_bytes_per_user:
            raise LimitReached(
                f'{what} would not fit in your storage ({_gib(used)} of {_gib(self.max_bytes_per_user)} used): '
                'delete some recordings first'
            )

    def used_bytes(self, user_id: uuid.UUID) -> int:
        with self.database.connection() as connection:
            files = connection.execute(_FILE_BYTES, {'user_id': user_id}).scalar()
            chunks = connection.execute(_CHUNK_BYTES, {'user_id': user_id}).scalar()
        return int(files or 0) + int(chunks or 0)
