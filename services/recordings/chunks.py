"""Chunk ingest: each chunk is durable in storage and in the database before it is acknowledged.

Exclusion lives in the database, so it holds across threads and instances alike: a chunk row is inserted only
by a statement that re-reads the recording's state in the same transaction (on PostgreSQL under a key-share
lock that finalize's row lock must wait for). So an acknowledged chunk is always part of the final file.
"""

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.audio.formats import audio_format, check_container
from services.core.database import Database
from services.core.errors import Busy, ChunkTooLarge, Conflict, InvalidInput, LimitReached, NotFound
from services.core.models import Chunk, Recording, utc_now
from services.recordings import lifecycle
from services.recordings.lifecycle import RecordingStatus
from services.recordings.quota import StorageQuota
from services.storage.keys import chunk_key
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
KNOWN_RECORDINGS = 10_000

# Built once, on the tables rather than the ORM classes: this path runs for every second of every recording, and
# building statements and ORM objects per chunk cost more CPU than the database work itself.
_CHUNKS: Table = Chunk.__table__  # type: ignore[attr-defined]
_RECORDINGS: Table = Recording.__table__  # type: ignore[attr-defined]
_ACCEPTING = lifecycle.accepts_audio(_RECORDINGS.c.status)
_CONTEXT = (
    select(
        _RECORDINGS.c.user_id,
        _RECORDINGS.c.status,
        _RECORDINGS.c.mime_type,
        _CHUNKS.c.size,
        _CHUNKS.c.sha256,
    )
    .select_from(
        _RECORDINGS.outerjoin(
            _CHUNKS, and_(_CHUNKS.c.recording_id == _RECORDINGS.c.id, _CHUNKS.c.seq == bindparam('seq'))
        )
    )
    .where(_RECORDINGS.c.id == bindparam('recording_id'))
)
_TOUCH_RECORDING = (
    update(_RECORDINGS).where(_RECORDINGS.c.id == bindparam('recording_id')).values(updated_at=bindparam('now'))
)
_STORED_DIGESTS = select(_CHUNKS.c.recording_id, _CHUNKS.c.seq, _CHUNKS.c.sha256).where(
    tuple_(_CHUNKS.c.recording_id, _CHUNKS.c.seq).in_(bindparam('keys', expanding=True))
)


def _conditional_insert(dialect: str) -> Any:
    """INSERT … SELECT from the recording row while it still accepts audio; a seq stored meanwhile is skipped.

    Run for a whole batch at once (one executemany): RETURNING cannot say which rows of an executemany went in."""
    source = select(
        _RECORDINGS.c.id,
        bindparam('seq', type_=_CHUNKS.c.seq.type),
        bindparam('size', type_=_CHUNKS.c.size.type),
        bindparam('sha256', type_=_CHUNKS.c.sha256.type),
    ).where(_RECORDINGS.c.id == bindparam('recording_id'), _RECORDINGS.c.user_id == bindparam('user_id'), _ACCEPTING)
    if dialect == 'postgresql':
        # KEY SHARE: chunks of one recording do not wait for each other, but finalize's FOR UPDATE waits for them.
        source = source.with_for_update(read=True, key_share=True)
    dialect_insert = postgresql.insert if dialect == 'postgresql' else sqlite.insert
    return (
        dialect_insert(_CHUNKS)
        .from_select(['recording_id', 'seq', 'size', 'sha256'], source, include_defaults=False)
        .on_conflict_do_nothing()
    )


@dataclass(frozen=True)
class ChunkReceipt:
    seq: int
    size: int
    duplicate: bool = False


@dataclass(frozen=True)
class ChunkUpload:
    user_id: uuid.UUID
    recording_id: uuid.UUID
    seq: int
    data: bytes


@dataclass(frozen=True)
class _StoredChunk:
    user_id: uuid.UUID
    recording_id: uuid.UUID
    seq: int
    size: int
    sha256: str


@dataclass(frozen=True)
class _ArrivedChunk:
    row: _StoredChunk
    data: bytes


@dataclass(frozen=True)
class _Context:
    status: RecordingStatus
    mime_type: str
    stored: _StoredChunk | None


class ChunkService:
    def __init__(
        self, *, database: Database, storage: Storage, quota: StorageQuota, max_chunk_bytes: int, max_chunks: int
    ) -> None:
        self.database = database
        self.storage = storage
        self.quota = quota
        self.max_chunk_bytes = max_chunk_bytes
        self.max_chunks = max_chunks
        self._insert_chunk = _conditional_insert(database.engine.dialect.name)
        # Chunks arriving together are stored as one batch (chunk_batches.py gathers them): one storage write (two
        # filesystem syncs on the local folder) and one commit (one WAL fsync on SQLite) for all of them. One batch
        # at a time: a caller of `add_chunk` in a thread of its own (tests, tools) waits for the batch before it.
        self._one_batch_at_a_time = threading.Lock()
        # recording -> (owner, mime type), neither of which ever changes: after a recording's first chunk here, its
        # chunks skip the look-up. Whether it still takes audio is decided by the conditional insert either way.
        self._known: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}

    def add_chunk(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int, data: bytes) -> ChunkReceipt:
        """Idempotent by seq: the same bytes again are a no-op, different bytes for a stored seq are refused.

        Blocks until the chunk is durable: a batch of one, for callers without an event loop."""
        (outcome,) = self.add_chunks([ChunkUpload(user_id, recording_id, seq, data)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def add_chunks(self, uploads: list[ChunkUpload]) -> list[ChunkReceipt | BaseException]:
        """Many chunks as one batch, one outcome each, for a caller that gathers them itself (the audio channel
        does, on its event loop): no thread waits for another, which costs more than the storing when chunks are
        small and many."""
        checked: list[ChunkReceipt | BaseException | _ArrivedChunk] = []
        for upload in uploads:
            try:
                checked.append(self._check(upload))
            except Exception as error:  # this chunk's answer; the others are stored all the same
                checked.append(error)
        arrived = [item for item in checked if isinstance(item, _ArrivedChunk)]
        try:
            with self._one_batch_at_a_time:
                stored = iter(self._store_batch(arrived) if arrived else [])
        except Exception as error:  # storage or database down: every chunk of the batch is answered with it
            stored = iter([error] * len(arrived))
        return [next(stored) if isinstance(item, _ArrivedChunk) else item for item in checked]

    def _check(self, upload: ChunkUpload) -> ChunkReceipt | _ArrivedChunk:
        """Everything but the storing: a receipt if this very chunk is already stored, else the chunk to store."""
        user_id, recording_id, seq, data = upload.user_id, upload.recording_id, upload.seq, upload.data
        self._validate(seq, data)
        digest = hashlib.sha256(data).hexdigest()
        known = self._known.get(recording_id) if seq else None  # chunk 0, the header, is always looked at whole
        if known is None:
            context = self._context(user_id=user_id, recording_id=recording_id, seq=seq)
            if context.stored is not None:
                return _compare(context.stored, digest)
            _check_accepting(context)
            known = self._remember(recording_id, user_id, context.mime_type)
        owner, mime_type = known
        if owner != user_id:  # another user's recording reads exactly like a missing one
            raise NotFound('recording not found')
        if seq == 0:
            check_container(audio_format(mime_type), data[:64])
        self.quota.reserve(user_id, len(data))
        return _ArrivedChunk(_StoredChunk(user_id, recording_id, seq, len(data), digest), data)

    def _remember(self, recording_id: uuid.UUID, owner: uuid.UUID, mime_type: str) -> tuple[uuid.UUID, str]:
        if len(self._known) >= KNOWN_RECORDINGS:
            self._known.clear()  # recordings come and go; starting over costs one look-up each
        self._known[recording_id] = (owner, mime_type)
        return owner, mime_type

    def _context(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int) -> _Context:
        """One query for the owner, the state and any chunk already stored under `seq`."""
        with self.database.connection() as connection:
            row = connection.execute(_CONTEXT, {'recording_id': recording_id, 'seq': seq}).first()
        if row is None or row[0] != user_id:  # another user's recording reads exactly like a missing one
            raise NotFound('recording not found')
        _owner, status, mime_type, size, sha256 = row
        stored = _StoredChunk(user_id, recording_id, seq, size, sha256) if sha256 is not None else None
        return _Context(RecordingStatus(status), mime_type, stored)

    def _store_batch(self, arrived: list[_ArrivedChunk]) -> list[ChunkReceipt | BaseException]:
        """Bytes first, rows second: a row only ever names bytes already durable. If storing fails, the whole
        batch is refused as retryable and the browsers send it again."""
        rows = [chunk.row for chunk in arrived]
        self.storage.put_many(
            {
                chunk_key(row.recording_id, row.seq, row.sha256): chunk.data
                for row, chunk in zip(rows, arrived, strict=True)
            }
        )
        return self._commit_rows(rows)

    def _commit_rows(self, rows: list[_StoredChunk]) -> list[ChunkReceipt | BaseException]:
        """One transaction and a fixed number of statements for the whole batch, however many rows it has.

        The statement count matters more than the rows: every driver call gives up the GIL and must win it back
        from the threads still hashing and writing, so a statement per row made the batch, which every caller
        waits for, the slowest part of the chunk path. Rows already stored (a resend) and rows the database did
        not take are explained one by one afterwards; they are rare.
        """
        with self.database.connection() as connection:  # commits on leaving
            before = _stored_digests(connection, rows)
            fresh: dict[tuple[uuid.UUID, int], _StoredChunk] = {}
            for row in rows:  # the first of several uploads of one seq in a batch is the one tried
                if (key := (row.recording_id, row.seq)) not in before:
                    fresh.setdefault(key, row)
            inserted = self._insert(connection, list(fresh.values()))
            if inserted:
                now = utc_now()
                touched = {row.recording_id for row in inserted}
                connection.execute(_TOUCH_RECORDING, [{'recording_id': rid, 'now': now} for rid in touched])
        taken = {id(row) for row in inserted}
        return [ChunkReceipt(seq=row.seq, size=row.size) if id(row) in taken else self._refused(row) for row in rows]

    def _insert(self, connection: Connection, rows: list[_StoredChunk]) -> list[_StoredChunk]:
        """The rows that went in. The row count of the executemany says "all of them" in the usual case; otherwise
        the rows are read back (psycopg reports no count for INSERT … SELECT … ON CONFLICT)."""
        if not rows:
            return []
        result = connection.execute(self._insert_chunk, [row.__dict__ for row in rows])
        if result.rowcount == len(rows):
            return rows
        after = _stored_digests(connection, rows)
        return [row for row in rows if after.get((row.recording_id, row.seq)) == row.sha256]

    def _refused(self, row: _StoredChunk) -> ChunkReceipt | BaseException:
        """Why the row was not inserted: a duplicate (fine), a conflicting one, or a recording no longer open.

        Only a stored row with these very bytes names this object (keys carry the content hash); without one,
        nothing will ever read it, finalize included, so it is removed whatever the answer.
        """
        try:
            context = self._context(user_id=row.user_id, recording_id=row.recording_id, seq=row.seq)
            if context.stored is not None:
                return _compare(context.stored, row.sha256)
            _check_accepting(context)
            refusal: BaseException = Busy('the recording changed while this chunk was stored; it will be sent again')
        except Exception as error:
            refusal = error
        self._forget(row)
        return refusal

    def _forget(self, row: _StoredChunk) -> None:
        """Remove the object of a refused chunk: its key is unique to its bytes, so no accepted chunk shares it."""
        try:
            self.storage.delete_prefix(chunk_key(row.recording_id, row.seq, row.sha256))
        except Exception:  # the orphan sweep removes it later
            log.warning('could not remove the refused chunk %s of %s', row.seq, row.recording_id, exc_info=True)

    def _validate(self, seq: int, data: bytes) -> None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidInput('seq must be a whole number from 0 up')
        if seq >= self.max_chunks:
            raise LimitReached('the recording has reached the maximum length')
        if not data:
            raise InvalidInput('the chunk is empty')
        if len(data) > self.max_chunk_bytes:
            raise ChunkTooLarge(f'the chunk is {len(data)} bytes; at most {self.max_chunk_bytes} are accepted')


def _stored_digests(connection: Connection, rows: list[_StoredChunk]) -> dict[tuple[uuid.UUID, int], str]:
    keys = [(row.recording_id, row.seq) for row in rows]
    return {(rid, seq): sha256 for rid, seq, sha256 in connection.execute(_STORED_DIGESTS, {'keys': keys})}


def _check_accepting(context: _Context) -> None:
    if context.status in lifecycle.ACCEPTS_AUDIO:
        return
    if context.status == RecordingStatus.FINALIZING:
        raise Busy('this recording is being saved right now; the chunk will be sent again')
    raise Conflict('this recording is already finished and takes no more audio')


def _compare(existing: _StoredChunk, digest: str) -> ChunkReceipt:
    if existing.sha256 != digest:
        raise Conflict(f'chunk {existing.seq} was already stored with different bytes', seq=existing.seq)
    return ChunkReceipt(seq=existing.seq, size=existing.size, duplicate=True)
