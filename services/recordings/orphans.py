"""Removes what no recording owns any more: storage objects left by a delete whose storage step failed or that
raced a writer, and temp files of killed processes. Bounded per run, and every removal is logged."""

import logging
import shutil
import time
from pathlib import Path

from sqlmodel import col, select

from services.core.database import Database
from services.core.models import Recording
from services.storage.keys import RECORDINGS_PREFIX, recording_id_of, recording_prefix
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
TEMP_MAX_AGE_S = 6 * 3600  # longer than any ffmpeg run may take


class OrphanSweeper:
    def __init__(self, *, database: Database, storage: Storage, temp_dir: Path, batch: int = 500) -> None:
        self.database = database
        self.storage = storage
        self.temp_dir = temp_dir
        self.batch = batch
        self._after = ''  # where the last run stopped: each run looks at the next `batch` recordings

    def sweep(self) -> int:
        """Delete the objects of up to `batch` recordings that have no row; returns how many were removed."""
        names = self.storage.list_children(RECORDINGS_PREFIX, after=self._after, limit=self.batch)
        self._after = names[-1] if len(names) == self.batch else ''
        listed = {recording_id for name in names if (recording_id := recording_id_of(name))}
        if not listed:
            self.remove_old_temp_files()
            return 0
        with self.database.session() as session:
            query = select(Recording.id).where(col(Recording.id).in_(listed))
            owned = set(session.exec(query).all())
        orphans = listed - owned
        for recording_id in sorted(orphans):
            deleted = self.storage.delete_prefix(recording_prefix(recording_id))
            log.warning('removed %d stored objects of recording %s, which no longer exists', deleted, recording_id)
        self.remove_old_temp_files()
        return len(orphans)

    def remove_old_temp_files(self) -> None:
        if not self.temp_dir.is_dir():
            return
        cutoff = time.time() - TEMP_MAX_AGE_S
        for entry in self.temp_dir.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                    log.info('removed the stale temp file %s', entry.name)
            except OSError:
                continue
