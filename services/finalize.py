"""Stop → one seekable file: chunks are concatenated in seq order through a temp file and stream-copied."""

import logging
import tempfile
import uuid
from pathlib import Path

from sqlmodel import col, delete, select

from .audio import audio_format, remux
from .database import Database
from .errors import AudioProcessingFailed, Conflict, MissingChunks
from .models import Chunk, Recording, RecordingStatus, utc_now
from .ordered_fetch import copy_in_order
from .recordings import RecordingLocks, audio_key, chunk_key, load_owned, recording_prefix
from .storage import Storage

log = logging.getLogger(__name__)


def find_missing(seqs: list[int], chunk_count: int | None) -> list[int]:
    expected = chunk_count if chunk_count is not None else (max(seqs) + 1 if seqs else 0)
    present = set(seqs)
    return [seq for seq in range(expected) if seq not in present]


class Finalizer:
    def __init__(
        self, *, database: Database, storage: Storage, locks: RecordingLocks, temp_dir: Path, fetch_workers: int = 1
    ) -> None:
        self.database = database
        self.storage = storage
        self.locks = locks
        self.temp_dir = temp_dir
        self.fetch_workers = fetch_workers

    def finalize(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, chunk_count: int | None = None) -> Recording:
        """Idempotent: finalizing a ready recording returns it unchanged, so a client may retry a lost answer."""
        with self.locks(recording_id).lock:
            with self.database.session() as session:
                recording = load_owned(session, user_id=user_id, recording_id=recording_id)
                if recording.status == RecordingStatus.READY:
                    return recording
                query = select(Chunk.seq).where(Chunk.recording_id == recording_id).order_by(col(Chunk.seq))
                seqs = list(session.exec(query).all())
                if missing := find_missing(seqs, chunk_count):
                    raise MissingChunks(missing)
                if not seqs:
                    raise Conflict('no audio was received for this recording')
                recording.status = RecordingStatus.FINALIZING
                session.add(recording)
                session.commit()
            return self._finish(recording, seqs[: chunk_count or len(seqs)])

    def _finish(self, recording: Recording, seqs: list[int]) -> Recording:
        try:
            duration_ms, size = self._assemble(recording, seqs)
        except AudioProcessingFailed as error:
            self._set_status(recording, RecordingStatus.FAILED, error=error.message)
            raise
        except Exception:
            self._set_status(recording, RecordingStatus.RECORDING)  # retryable: keep the chunks, try again later
            raise
        with self.database.session() as session:
            recording.status = RecordingStatus.READY
            recording.duration_ms, recording.size_bytes, recording.error = duration_ms, size, None
            recording.updated_at = utc_now()
            session.add(recording)
            session.exec(delete(Chunk).where(col(Chunk.recording_id) == recording.id))  # type: ignore[call-overload]
            session.commit()
        self.storage.delete_prefix(f'{recording_prefix(recording.id)}chunks/')
        log.info('finalized recording %s: %d chunks, %d ms, %d bytes', recording.id, len(seqs), duration_ms, size)
        return recording

    def _assemble(self, recording: Recording, seqs: list[int]) -> tuple[int, int]:
        fmt = audio_format(recording.mime_type)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.temp_dir, prefix='finalize-') as folder:
            joined, output = Path(folder) / f'joined.{fmt.extension}', Path(folder) / f'final.{fmt.extension}'
            with joined.open('wb') as handle:
                keys = [chunk_key(recording.id, seq) for seq in seqs]
                copy_in_order(self.storage, keys, handle, workers=self.fetch_workers)
            duration_ms = remux(joined, output, fmt)
            self.storage.put_file(audio_key(recording), output)
            return duration_ms, output.stat().st_size

    def _set_status(self, recording: Recording, status: RecordingStatus, error: str | None = None) -> None:
        with self.database.session() as session:
            recording.status, recording.error, recording.updated_at = status, error, utc_now()
            session.add(recording)
            session.commit()
