"""Chunk ingest: each chunk is durable in storage and in the database before it is acknowledged."""

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from .database import Database
from .errors import ChunkTooLarge, Conflict, InvalidInput, LimitReached, NotFound
from .group_commit import GroupCommit
from .models import Chunk, Recording, RecordingStatus, utc_now
from .recordings import RecordingLocks, chunk_key
from .storage import Storage

OPEN_STATUSES = (RecordingStatus.RECORDING, RecordingStatus.FAILED)

# Built once, on the tables rather than the ORM classes: this path runs for every second of every recording, and
# building statements and ORM objects per chunk cost more CPU than the database work itself.
_CHUNKS: Table = Chunk.__table__  # type: ignore[attr-defined]
_RECORDINGS: Table = Recording.__table__  # type: ignore[attr-defined]
_OWNER_STATE_AND_STORED = (
    select(_RECORDINGS.c.user_id, _RECORDINGS.c.status, _CHUNKS.c.size, _CHUNKS.c.sha256)
    .select_from(
        _RECORDINGS.outerjoin(
            _CHUNKS, and_(_CHUNKS.c.recording_id == _RECORDINGS.c.id, _CHUNKS.c.seq == bindparam('seq'))
        )
    )
    .where(_RECORDINGS.c.id == bindparam('recording_id'))
)
_INSERT_CHUNKS = insert(_CHUNKS)
_TOUCH_RECORDINGS = (
    update(_RECORDINGS)
    .where(_RECORDINGS.c.id.in_(bindparam('ids', expanding=True)))
    .values(updated_at=bindparam('now'))
)


@dataclass(frozen=True)
class ChunkReceipt:
    seq: int
    size: int
    duplicate: bool = False


@dataclass(frozen=True)
class _StoredChunk:
    recording_id: uuid.UUID
    seq: int
    size: int
    sha256: str


class ChunkService:
    def __init__(
        self, *, database: Database, storage: Storage, locks: RecordingLocks, max_chunk_bytes: int, max_chunks: int
    ) -> None:
        self.database = database
        self.storage = storage
        self.locks = locks
        self.max_chunk_bytes = max_chunk_bytes
        self.max_chunks = max_chunks
        # Chunks arriving together share one commit (one WAL fsync on SQLite) instead of one commit each.
        self._rows: GroupCommit[_StoredChunk, ChunkReceipt] = GroupCommit(self._commit_rows)

    def add_chunk(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int, data: bytes) -> ChunkReceipt:
        """Idempotent by seq: the same bytes again are a no-op, different bytes for a stored seq are refused."""
        self._validate(seq, data)
        digest = hashlib.sha256(data).hexdigest()
        with self.locks(recording_id).lock:
            existing = self._stored(user_id=user_id, recording_id=recording_id, seq=seq)
            if existing is not None:
                return _compare(existing, digest)
            self.storage.put_bytes(chunk_key(recording_id, seq), data)
            return self._rows.submit(_StoredChunk(recording_id, seq, len(data), digest))

    def _stored(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int) -> _StoredChunk | None:
        """One query for the owner, the state and any chunk already stored under `seq`; refuses what it must."""
        with self.database.session() as session:
            row = (
                session.connection()
                .execute(_OWNER_STATE_AND_STORED, {'recording_id': recording_id, 'seq': seq})
                .first()
            )
        if row is None or row[0] != user_id:  # another user's recording reads exactly like a missing one
            raise NotFound('recording not found')
        _owner, status, size, sha256 = row
        if sha256 is not None:
            return _StoredChunk(recording_id, seq, size, sha256)
        if status not in OPEN_STATUSES:
            raise Conflict('this recording is already finished and takes no more audio')
        return None

    def _commit_rows(self, rows: list[_StoredChunk]) -> list[ChunkReceipt | BaseException]:
        """One transaction for the whole batch; if another instance stored one of these seqs, each row alone."""
        try:
            self._insert(rows)
        except IntegrityError:
            return [self._commit_alone(row) for row in rows]
        return [ChunkReceipt(seq=row.seq, size=row.size) for row in rows]

    def _insert(self, rows: list[_StoredChunk]) -> None:
        with self.database.session() as session:
            connection = session.connection()
            connection.execute(_INSERT_CHUNKS, [row.__dict__ for row in rows])
            connection.execute(_TOUCH_RECORDINGS, {'ids': list({row.recording_id for row in rows}), 'now': utc_now()})
            session.commit()

    def _commit_alone(self, row: _StoredChunk) -> ChunkReceipt | BaseException:
        try:
            self._insert([row])
            return ChunkReceipt(seq=row.seq, size=row.size)
        except IntegrityError as error:  # another instance stored the same seq between our read and write
            with self.database.session() as session:
                stored = session.get(Chunk, (row.recording_id, row.seq))
            if stored is None:
                return error
            return _compare_or_error(_StoredChunk(row.recording_id, row.seq, stored.size, stored.sha256), row.sha256)

    def _validate(self, seq: int, data: bytes) -> None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidInput('seq must be a whole number from 0 up')
        if seq >= self.max_chunks:
            raise LimitReached('the recording has reached the maximum length')
        if not data:
            raise InvalidInput('the chunk is empty')
        if len(data) > self.max_chunk_bytes:
            raise ChunkTooLarge(f'the chunk is {len(data)} bytes; at most {self.max_chunk_bytes} are accepted')


def _compare(existing: _StoredChunk, digest: str) -> ChunkReceipt:
    if existing.sha256 != digest:
        raise Conflict(f'chunk {existing.seq} was already stored with different bytes', seq=existing.seq)
    return ChunkReceipt(seq=existing.seq, size=existing.size, duplicate=True)


def _compare_or_error(existing: _StoredChunk, digest: str) -> ChunkReceipt | BaseException:
    try:
        return _compare(existing, digest)
    except Conflict as error:
        return error
