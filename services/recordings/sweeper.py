"""Finishes recordings nobody finished, and keeps late audio: a closed laptop, a lost tab, a train without signal.

A recording left in `recording` (or stuck in `finalizing`) with no new audio for a while is finalized from the
chunks it has, bridging any gap, and keeps its chunks (`ready_open`); when audio the browser held arrives later,
the recording is assembled again once that audio has stopped arriving. Kept chunks are let go after
`late_audio_retention`. Which recordings are stale is `lifecycle.stale`'s to say.
"""

import asyncio
import logging
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select, update

from services.audio.waveforms import WaveformService
from services.core.database import Database
from services.core.errors import AppError, Busy, Conflict, MissingChunks
from services.core.models import Chunk, Recording, utc_now
from services.recordings import lifecycle
from services.recordings.finalize import Finalizer
from services.recordings.lifecycle import Event
from services.recordings.orphans import OrphanSweeper
from services.storage.keys import chunks_prefix
from services.storage.protocol import Storage

log = logging.getLogger(__name__)


class StaleRecordingSweeper:
    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        finalizer: Finalizer,
        idle_after: timedelta,
        late_audio_retention: timedelta,
        waveforms: WaveformService | None = None,
        orphans: OrphanSweeper | None = None,
    ) -> None:
        self.database = database
        self.storage = storage
        self.finalizer = finalizer
        self.idle_after = idle_after
        self.late_audio_retention = late_audio_retention
        self.waveforms = waveforms
        self.orphans = orphans

    def stale_recordings(self, limit: int = 20) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Idle recordings nobody finished, and finished ones whose late audio has stopped arriving."""
        cutoff = utc_now() - self.idle_after
        chunk_count = (
            select(func.count()).select_from(Chunk).where(col(Chunk.recording_id) == Recording.id).scalar_subquery()
        )
        stale = lifecycle.stale(
            col(Recording.status),
            col(Recording.updated_at),
            chunk_count,
            col(Recording.assembled_chunks),
            idle_before=cutoff,
        )
        query = select(Recording.id, Recording.user_id).where(stale).order_by(col(Recording.updated_at)).limit(limit)
        with self.database.session() as session:
            return [(row[0], row[1]) for row in session.exec(query).all()]

    def sweep(self) -> list[uuid.UUID]:
        """Finalize what is stale; returns the ids that are now ready. One bad recording never stops the rest."""
        finished = []
        for recording_id, user_id in self.stale_recordings():
            try:
                self.finalizer.finalize(user_id=user_id, recording_id=recording_id, bridge_gaps=True)
                finished.append(recording_id)
                log.info('finalized idle recording %s from its stored chunks', recording_id)
            except MissingChunks:  # even bridging needs the first chunk, which holds the header
                self._mark_failed(recording_id, 'the beginning of the recording never arrived')
            except Conflict as error:
                self._mark_failed(recording_id, error.message)
            except Busy:  # another finalize holds a live claim; it renews it until it is done
                log.debug('idle recording %s is being finalized elsewhere', recording_id)
            except AppError as error:  # storage or database trouble: the next sweep tries again
                log.warning('idle recording %s could not be finalized: %s', recording_id, error.message)
        self.release_kept_chunks()
        return finished

    def release_kept_chunks(self, limit: int = 20) -> int:
        """Chunks kept for late audio are let go once nothing has arrived for the retention time."""
        cutoff = utc_now() - self.late_audio_retention
        query = (
            select(Recording.id)
            .where(lifecycle.allows(Event.LET_GO, col(Recording.status)))
            .where(col(Recording.updated_at) < cutoff)
            .limit(limit)
        )
        with self.database.session() as session:
            expired = list(session.exec(query).all())
        released = 0
        for recording_id in expired:
            if self.finalizer.release_chunks(recording_id, idle_since=cutoff):
                self.storage.delete_prefix(chunks_prefix(recording_id))
                released += 1
        return released

    def _mark_failed(self, recording_id: uuid.UUID, reason: str) -> None:
        log.warning('idle recording %s cannot be finalized: %s', recording_id, reason)
        statement = (
            update(Recording)
            .where(col(Recording.id) == recording_id)
            .where(lifecycle.allows(Event.FAIL, col(Recording.status)))
            .values(status=lifecycle.target(Event.FAIL), error=reason, updated_at=utc_now())
        )
        with self.database.session() as session:
            session.exec(statement)  # type: ignore[call-overload]
            session.commit()

    async def run_forever(self, interval_s: float) -> None:
        """The background loop; the blocking sweeps run in a worker thread."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.sweep)
                if self.waveforms:
                    await asyncio.to_thread(self.waveforms.fill_missing)
                if self.orphans:
                    await asyncio.to_thread(self.orphans.sweep)
            except Exception:
                log.exception('sweeping idle recordings failed; trying again in %s s', interval_s)
