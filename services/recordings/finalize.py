"""Stop → one seekable file: chunks are concatenated in seq order through a temp file and stream-copied.

Who may assemble is decided by a compare-and-set on the recording row (under a row lock on PostgreSQL), so two
requests, two instances or the sweeper never assemble one recording at once, and no chunk is acknowledged while
it happens. A recording the server finished on its own (it went idle) keeps its chunks (`ready_open`): audio the
browser still holds may arrive late, and the recording is then assembled again with it. Which status allows what is
`lifecycle.py`'s to say.
"""

import logging
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, delete, select, update

from services.audio.ffmpeg import remux
from services.audio.formats import audio_format
from services.audio.real_length import packet_length_ms
from services.core.database import Database
from services.core.errors import AppError, AudioProcessingFailed, Busy, Conflict, InvalidInput, MissingChunks
from services.core.models import Chunk, Recording, utc_now
from services.recordings import imports, lifecycle
from services.recordings.imports import ImportLimits
from services.recordings.lifecycle import Event, RecordingStatus
from services.recordings.service import load_owned, recording_audio_key
from services.storage.keys import chunk_key, chunks_prefix, legacy_chunk_key, mp3_key, recording_prefix
from services.storage.ordered_fetch import copy_in_order
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
# A running finalize renews its claim every HEARTBEAT; one not renewed for FINALIZE_TAKEOVER died with its process
# (a kill, a crash, a lost instance), and another finalize or the sweeper may take over.
HEARTBEAT_S = 5.0
FINALIZE_TAKEOVER = timedelta(seconds=20)
# Browsers stop at the limit by their own clock; the file may run a little longer than that clock.
DURATION_SLACK_MS = 30_000
# How much more sound than its timestamps claim a file may hold (2 % of it, at least this) before it is refused.
TIMING_SLACK_MS = 2_000


def find_missing(seqs: list[int], chunk_count: int | None) -> list[int]:
    expected = max(chunk_count or 0, max(seqs) + 1 if seqs else 0)
    present = set(seqs)
    return [seq for seq in range(expected) if seq not in present]


@dataclass(frozen=True)
class _Plan:
    """What a claimed finalize works from: the chunks as they stood once nobody could add more."""

    chunks: list[tuple[int, str, bool]]  # (seq, sha256, legacy_key) in seq order
    previous: RecordingStatus  # the status it was claimed from: a give-back returns it there
    keep_chunks: bool


class Finalizer:
    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        temp_dir: Path,
        max_chunks: int,
        max_duration_ms: int,
        ffmpeg_timeout_s: float = 900,
        fetch_workers: int = 1,
        max_import_bytes: int = ImportLimits.max_bytes,
        max_concurrent_encoders: int = 2,
    ) -> None:
        self.database = database
        self.storage = storage
        self.temp_dir = temp_dir
        self.max_chunks = max_chunks
        self.max_duration_ms = max_duration_ms
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self.duration_slack_ms = DURATION_SLACK_MS
        self.fetch_workers = fetch_workers
        self.imports = imports.ImportAssembler(
            storage=storage,
            ffmpeg_timeout_s=ffmpeg_timeout_s,
            max_bytes=max_import_bytes,
            max_duration_ms=max_duration_ms + DURATION_SLACK_MS,
            encoders=max_concurrent_encoders,
        )
        self.on_ready: Callable[[uuid.UUID], None] = lambda _recording_id: None  # e.g. start its waveform

    def finalize(
        self,
        *,
        user_id: uuid.UUID,
        recording_id: uuid.UUID,
        chunk_count: int | None = None,
        bridge_gaps: bool = False,
    ) -> Recording:
        """Idempotent: finalizing a ready recording returns it, so a client may retry a lost answer.

        With `bridge_gaps` (the sweeper, finishing a recording nobody stopped) missing chunks do not stop it and
        the chunks are kept for late audio; only the first chunk, which holds the header, is required.
        """
        if chunk_count is not None and not 0 <= chunk_count <= self.max_chunks:
            raise InvalidInput(f'chunk_count must be between 0 and {self.max_chunks}')
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
            seqs = [seq for seq, _sha, _legacy in _chunks_of(session, recording_id)]
            if recording.status in lifecycle.FINAL:
                return recording
            if recording.original_mime_type is not None:  # an import is finished only once all its file is here
                imports.check_arrived(session, recording)
                bridge_gaps = False
        if recording.status == RecordingStatus.READY_OPEN and bridge_gaps and len(seqs) == recording.assembled_chunks:
            return recording  # nothing arrived since the server assembled it
        self._check_complete(seqs, chunk_count, bridge_gaps)
        previous = recording.status
        if not self._claim(recording_id, utc_now()):
            return self._after_lost_claim(user_id, recording_id)
        with self.database.session() as session:
            chunks = _chunks_of(session, recording_id)  # now final: nothing is accepted while we hold the claim
        try:  # chunks that landed between the first look and the claim may have opened a gap: judge the final set
            self._check_complete([seq for seq, _sha, _legacy in chunks], chunk_count, bridge_gaps)
        except MissingChunks:
            self._release(recording, Event.GIVE_BACK, claimed_from=previous)
            raise
        return self._finish(recording, _Plan(chunks, previous, keep_chunks=bridge_gaps))

    def _check_complete(self, seqs: list[int], chunk_count: int | None, bridge_gaps: bool) -> None:
        if not seqs:
            raise Conflict('no audio was received for this recording')
        missing = find_missing(seqs, chunk_count)
        if missing and not (bridge_gaps and seqs[0] == 0):
            raise MissingChunks(missing)
        if missing:
            log.warning('finalizing a recording across %d missing chunks', len(missing))

    def _claim(self, recording_id: uuid.UUID, now: datetime) -> bool:
        """Compare-and-set to `finalizing`; on PostgreSQL the row lock first waits for chunks being inserted."""
        claimable = lifecycle.claimable(
            col(Recording.status), col(Recording.updated_at), lapsed_before=now - FINALIZE_TAKEOVER
        )
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording_id)
            .where(claimable)
            .values(status=lifecycle.target(Event.CLAIM), updated_at=now)
        )
        with self.database.session() as session:
            _lock_row(session, recording_id)
            claimed = session.exec(statement).rowcount == 1  # type: ignore[call-overload]
            session.commit()
        return claimed

    def release_chunks(self, recording_id: uuid.UUID, *, idle_since: datetime) -> bool:
        """Stop keeping a finished recording's chunks, if all of them are in its file and none arrived lately;
        from then on late chunks are refused. The caller deletes the objects."""
        assembled = select(func.count()).select_from(Chunk).where(col(Chunk.recording_id) == recording_id)
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording_id)
            .where(lifecycle.allows(Event.LET_GO, col(Recording.status)))
            .where(col(Recording.updated_at) < idle_since)
            .where(col(Recording.assembled_chunks) == assembled.scalar_subquery())
            .values(status=lifecycle.target(Event.LET_GO))
        )
        with self.database.session() as session:
            _lock_row(session, recording_id)
            if session.exec(statement).rowcount != 1:  # type: ignore[call-overload]
                return False
            session.exec(delete(Chunk).where(col(Chunk.recording_id) == recording_id))  # type: ignore[call-overload]
            session.commit()
        return True

    def _after_lost_claim(self, user_id: uuid.UUID, recording_id: uuid.UUID) -> Recording:
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if lifecycle.is_playable(recording.status):
            return recording
        raise Busy('this recording is being saved right now; try again in a moment')

    def _finish(self, recording: Recording, plan: _Plan) -> Recording:
        try:
            with self._heartbeat(recording.id):
                values = self._assemble(recording, plan.chunks)
        except AudioProcessingFailed as error:
            if recording.original_mime_type is not None:  # a file that cannot be imported leaves nothing behind
                imports.discard(self.database, self.storage, recording)
                raise
            # A recording that could be played keeps its earlier file; the new chunks wait for a fix.
            failed = Event.GIVE_BACK if lifecycle.is_playable(plan.previous) else Event.FAIL
            self._release(recording, failed, claimed_from=plan.previous, error=error.message)
            raise
        except Exception:
            self._release(recording, Event.GIVE_BACK, claimed_from=plan.previous)  # retryable: try again later
            raise
        if not self._mark_ready(recording, plan, values):
            log.info('recording %s was deleted while it was being saved; removing what was written', recording.id)
            self.storage.delete_prefix(recording_prefix(recording.id))
            raise Conflict('this recording was deleted')
        try:
            if lifecycle.is_playable(plan.previous):
                self.storage.delete_prefix(mp3_key(recording.id))  # made from the earlier, shorter file
            if not plan.keep_chunks:
                self.storage.delete_prefix(chunks_prefix(recording.id))
        except AppError:  # the recording is ready; what is left is only a cost, retried by the orphan sweep
            log.warning('could not remove the chunks of finalized recording %s', recording.id, exc_info=True)
        log.info(
            'finalized recording %s: %d chunks, %d ms, %d bytes',
            recording.id,
            len(plan.chunks),
            values['duration_ms'],
            values['size_bytes'],
        )
        self.on_ready(recording.id)
        return recording

    @contextmanager
    def _heartbeat(self, recording_id: uuid.UUID) -> Iterator[None]:
        """Renew the claim while assembling, so a long finalize is never taken over but a dead one soon is."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(HEARTBEAT_S):
                try:
                    self._touch_claim(recording_id)
                except Exception:  # the database is down: the claim may lapse, which only allows a retry
                    log.warning('could not renew the finalize claim of %s', recording_id, exc_info=True)

        beat = threading.Thread(target=renew, name=f'finalize-heartbeat-{recording_id}', daemon=True)
        beat.start()
        try:
            yield
        finally:
            done.set()
            beat.join()

    def _touch_claim(self, recording_id: uuid.UUID) -> None:
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording_id)
            .where(lifecycle.allows(Event.RENEW, col(Recording.status)))
            .values(updated_at=utc_now())
        )
        with self.database.session() as session:
            session.exec(statement)  # type: ignore[call-overload]
            session.commit()

    def _mark_ready(self, recording: Recording, plan: _Plan, assembled_values: dict[str, Any]) -> bool:
        """Only a recording still claimed becomes ready: one deleted meanwhile stays deleted."""
        assembled = Event.ASSEMBLED_IDLE if plan.keep_chunks else Event.ASSEMBLED
        values = {
            **assembled_values,
            'status': lifecycle.target(assembled),
            'error': None,
            'assembled_chunks': len(plan.chunks),
            'peaks': None,
            'mp3_bytes': None,  # an earlier file's copy is deleted below
            'updated_at': utc_now(),
        }
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording.id)
            .where(lifecycle.allows(assembled, col(Recording.status)))
            .values(**values)
        )
        with self.database.session() as session:
            if session.exec(statement).rowcount != 1:  # type: ignore[call-overload]
                return False
            if not plan.keep_chunks:
                session.exec(delete(Chunk).where(col(Chunk.recording_id) == recording.id))  # type: ignore[call-overload]
            session.commit()
        for name, value in values.items():
            setattr(recording, name, value)
        return True

    def _assemble(self, recording: Recording, chunks: list[tuple[int, str, bool]]) -> dict[str, Any]:
        """Join the chunks and store the file that is played; returns the recording's new values."""
        fmt = audio_format(recording.original_mime_type or recording.mime_type)
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.temp_dir, prefix='finalize-') as folder:
            joined, output = Path(folder) / f'joined.{fmt.extension}', Path(folder) / f'final.{fmt.extension}'
            keys = [_key(recording.id, chunk) for chunk in chunks]
            with joined.open('wb') as handle:
                copy_in_order(self.storage, keys, handle, workers=self.fetch_workers)
            if recording.original_mime_type is not None:
                return self.imports.assemble(recording, joined, Path(folder))
            duration_ms = remux(joined, output, fmt, timeout_s=self.ffmpeg_timeout_s)
            sound_ms = packet_length_ms(output, fmt)  # what decoders will play, whatever the timestamps claim
            if sound_ms > duration_ms + max(TIMING_SLACK_MS, duration_ms // 50):
                raise AudioProcessingFailed(
                    f'the audio cannot be saved: its timestamps say it lasts {_seconds(duration_ms)}, '
                    f'but it holds {_seconds(sound_ms)} of sound'
                )
            if max(duration_ms, sound_ms) > self.max_duration_ms + self.duration_slack_ms:
                limit_h = self.max_duration_ms / 3_600_000
                raise AudioProcessingFailed(f'the audio is longer than the {limit_h:g}-hour limit of one recording')
            self.storage.put_file(recording_audio_key(recording), output)
            return {'duration_ms': duration_ms, 'size_bytes': output.stat().st_size}

    def _release(
        self, recording: Recording, event: Event, *, claimed_from: RecordingStatus, error: str | None = None
    ) -> None:
        """End a claim without a new file: `event` is a give-back (to the status it was claimed from) or a failure."""
        status = lifecycle.next_status(RecordingStatus.FINALIZING, event, claimed_from=claimed_from)
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording.id)
            .where(lifecycle.allows(event, col(Recording.status)))
            .values(status=status, error=error, updated_at=utc_now())
        )
        with self.database.session() as session:
            session.exec(statement)  # type: ignore[call-overload]
            session.commit()
        recording.status, recording.error = status, error


def _seconds(ms: int) -> str:
    return f'{ms / 1000:.1f} s' if ms < 60_000 else f'{ms // 60_000} min {ms % 60_000 // 1000} s'


def _chunks_of(session: Session, recording_id: uuid.UUID) -> list[tuple[int, str, bool]]:
    query = (
        select(Chunk.seq, Chunk.sha256, Chunk.legacy_key)
        .where(Chunk.recording_id == recording_id)
        .order_by(col(Chunk.seq))
    )
    return [(seq, sha, bool(legacy)) for seq, sha, legacy in session.exec(query).all()]


def _key(recording_id: uuid.UUID, chunk: tuple[int, str, bool]) -> str:
    seq, sha256, legacy = chunk
    return legacy_chunk_key(recording_id, seq) if legacy else chunk_key(recording_id, seq, sha256)


def _lock_row(session: Session, recording_id: uuid.UUID) -> None:
    """PostgreSQL: FOR UPDATE waits for every chunk insert holding a key-share lock on the row (SQLite has one
    writer at a time, which gives the same order)."""
    if session.connection().dialect.name == 'postgresql':
        session.exec(text('SELECT 1 FROM recording WHERE id = :id FOR UPDATE').bindparams(id=recording_id))  # type: ignore[call-overload]
