"""Stop → one seekable file: chunks are concatenated in seq order through a temp file and stream-copied."""

import logging
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, delete, or_, select, update

from .audio import audio_format, remux
from .database import Database
from .errors import AudioProcessingFailed, Busy, Conflict, MissingChunks
from .models import Chunk, Recording, RecordingStatus, utc_now
from .recordings import RecordingLocks, audio_key, chunk_key, load_owned, recording_prefix
from .storage import Storage

log = logging.getLogger(__name__)
# A finalize that has not finished in this long died with its process; another may take over.
FINALIZE_TAKEOVER = timedelta(minutes=5)


def find_missing(seqs: list[int], chunk_count: int | None) -> list[int]:
    expected = chunk_count if chunk_count is not None else (max(seqs) + 1 if seqs else 0)
    present = set(seqs)
    return [seq for seq in range(expected) if seq not in present]


class Finalizer:
    def __init__(self, *, database: Database, storage: Storage, locks: RecordingLocks, temp_dir: Path) -> None:
        self.database = database
        self.storage = storage
        self.locks = locks
        self.temp_dir = temp_dir

    def finalize(
        self, *, user_id: uuid.UUID, recording_id: uuid.UUID, chunk_count: int | None = None, bridge_gaps: bool = False
    ) -> Recording:
        """Idempotent: finalizing a ready recording returns it unchanged, so a client may retry a lost answer.

        With `bridge_gaps`, missing chunks do not stop it: the audio on both sides of a gap is kept
        (the demuxer resyncs at the next cluster). Only the first chunk, which holds the header, is required.
        """
        with self.locks(recording_id).lock:
            with self.database.session() as session:
                recording = load_owned(session, user_id=user_id, recording_id=recording_id)
                if recording.status == RecordingStatus.READY:
                    return recording
                query = select(Chunk.seq).where(Chunk.recording_id == recording_id).order_by(col(Chunk.seq))
                seqs = list(session.exec(query).all())
            if chunk_count is not None:
                seqs = [seq for seq in seqs if seq < chunk_count]
            missing = find_missing(seqs, chunk_count)
            if missing and not (bridge_gaps and seqs and seqs[0] == 0):
                raise MissingChunks(missing)
            if not seqs:
                raise Conflict('no audio was received for this recording')
            if missing:
                log.warning('finalizing recording %s across %d missing chunks', recording_id, len(missing))
            if not self._claim(recording_id, utc_now()):
                return self._after_lost_claim(user_id, recording_id)
            return self._finish(recording, seqs)

    def _claim(self, recording_id: uuid.UUID, now: datetime) -> bool:
        """Compare-and-set to `finalizing`, so two instances (or the sweeper) never assemble the same recording."""
        claimable = or_(
            col(Recording.status).in_([RecordingStatus.RECORDING, RecordingStatus.FAILED]),
            (col(Recording.status) == RecordingStatus.FINALIZING)
            & (col(Recording.updated_at) < now - FINALIZE_TAKEOVER),
        )
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording_id)
            .where(claimable)
            .values(status=RecordingStatus.FINALIZING, updated_at=now)
        )
        with self.database.session() as session:
            claimed = session.exec(statement).rowcount == 1  # type: ignore[call-overload]
            session.commit()
        return claimed

    def _after_lost_claim(self, user_id: uuid.UUID, recording_id: uuid.UUID) -> Recording:
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if recording.status == RecordingStatus.READY:
            return recording
        raise Busy('this recording is being saved right now; try again in a moment')

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
                for seq in seqs:
                    self.storage.copy_to(chunk_key(recording.id, seq), handle)
            duration_ms = remux(joined, output, fmt)
            self.storage.put_file(audio_key(recording), output)
            return duration_ms, output.stat().st_size

    def _set_status(self, recording: Recording, status: RecordingStatus, error: str | None = None) -> None:
        with self.database.session() as session:
            recording.status, recording.error, recording.updated_at = status, error, utc_now()
            session.add(recording)
            session.commit()
