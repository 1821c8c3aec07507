"""Finishes recordings nobody finished: a closed laptop, a lost tab, a crash mid-finalize.

A recording left in `recording` (or stuck in `finalizing`) with no new audio for a while is finalized
from the chunks it has, bridging any gap, so nothing stays half-done forever.
"""

import asyncio
import logging
import uuid
from datetime import timedelta

from sqlmodel import col, select

from .database import Database
from .errors import AppError, Conflict, MissingChunks
from .finalize import Finalizer
from .models import Recording, RecordingStatus, utc_now

log = logging.getLogger(__name__)


class StaleRecordingSweeper:
    def __init__(self, *, database: Database, finalizer: Finalizer, idle_after: timedelta) -> None:
        self.database = database
        self.finalizer = finalizer
        self.idle_after = idle_after

    def stale_recordings(self, limit: int = 20) -> list[tuple[uuid.UUID, uuid.UUID]]:
        cutoff = utc_now() - self.idle_after
        query = (
            select(Recording.id, Recording.user_id)
            .where(col(Recording.status).in_([RecordingStatus.RECORDING, RecordingStatus.FINALIZING]))
            .where(col(Recording.updated_at) < cutoff)
            .order_by(col(Recording.updated_at))
            .limit(limit)
        )
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
            except AppError as error:  # storage or database trouble: the next sweep tries again
                log.warning('idle recording %s could not be finalized: %s', recording_id, error.message)
        return finished

    def _mark_failed(self, recording_id: uuid.UUID, reason: str) -> None:
        log.warning('idle recording %s cannot be finalized: %s', recording_id, reason)
        with self.database.session() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None and recording.status != RecordingStatus.READY:
                recording.status, recording.error, recording.updated_at = RecordingStatus.FAILED, reason, utc_now()
                session.add(recording)
                session.commit()

    async def run_forever(self, interval_s: float) -> None:
        """The background loop; the blocking sweep runs in a worker thread."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:
                log.exception('sweeping idle recordings failed; trying again in %s s', interval_s)
