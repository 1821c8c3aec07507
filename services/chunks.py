"""Chunk ingest: each chunk is durable in storage and in the database before it is acknowledged."""

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import update

from .database import Database
from .errors import ChunkTooLarge, Conflict, InvalidInput, LimitReached
from .models import Chunk, Recording, RecordingStatus, utc_now
from .recordings import RecordingLocks, chunk_key, load_owned
from .storage import Storage


@dataclass(frozen=True)
class ChunkReceipt:
    seq: int
    size: int
    duplicate: bool = False


class ChunkService:
    def __init__(
        self, *, database: Database, storage: Storage, locks: RecordingLocks, max_chunk_bytes: int, max_chunks: int
    ) -> None:
        self.database = database
        self.storage = storage
        self.locks = locks
        self.max_chunk_bytes = max_chunk_bytes
        self.max_chunks = max_chunks

    def add_chunk(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int, data: bytes) -> ChunkReceipt:
        """Idempotent by seq: the same bytes again are a no-op, different bytes for a stored seq are refused."""
        self._validate(seq, data)
        digest = hashlib.sha256(data).hexdigest()
        with self.locks(recording_id).lock:
            with self.database.session() as session:
                recording = load_owned(session, user_id=user_id, recording_id=recording_id)
                existing = session.get(Chunk, (recording_id, seq))
                if existing is not None:
                    return _compare(existing, digest)
                if recording.status not in (RecordingStatus.RECORDING, RecordingStatus.FAILED):
                    raise Conflict('this recording is already finished and takes no more audio')
            self.storage.put_bytes(chunk_key(recording_id, seq), data)
            with self.database.session() as session:
                session.add(Chunk(recording_id=recording_id, seq=seq, size=len(data), sha256=digest))
                session.exec(
                    update(Recording)
                    .where(Recording.id == recording_id)  # type: ignore[call-overload, arg-type]
                    .values(updated_at=utc_now())
                )
                try:
                    session.commit()
                except IntegrityError:  # another instance stored the same seq between our read and write
                    session.rollback()
                    stored = session.get(Chunk, (recording_id, seq))
                    if stored is None:
                        raise
                    return _compare(stored, digest)
        return ChunkReceipt(seq=seq, size=len(data))

    def _validate(self, seq: int, data: bytes) -> None:
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InvalidInput('seq must be a whole number from 0 up')
        if seq >= self.max_chunks:
            raise LimitReached('the recording has reached the maximum length')
        if not data:
            raise InvalidInput('the chunk is empty')
        if len(data) > self.max_chunk_bytes:
            raise ChunkTooLarge(f'the chunk is {len(data)} bytes; at most {self.max_chunk_bytes} are accepted')


def _compare(existing: Chunk, digest: str) -> ChunkReceipt:
    if existing.sha256 != digest:
        raise Conflict(f'chunk {existing.seq} was already stored with different bytes', seq=existing.seq)
    return ChunkReceipt(seq=existing.seq, size=existing.size, duplicate=True)
