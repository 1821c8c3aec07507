"""Keeps every ready recording's waveform peaks in the database, computed in the background."""

import json
import logging
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

from sqlmodel import col, select, update

from services.audio.ffmpeg import DEFAULT_FFMPEG_TIMEOUT_S
from services.audio.formats import audio_format
from services.audio.peaks import compute_peaks
from services.core.database import Database
from services.core.errors import AppError
from services.core.models import Recording
from services.recordings import lifecycle
from services.recordings.service import recording_audio_key
from services.storage.protocol import Storage

log = logging.getLogger(__name__)


class WaveformService:
    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        temp_dir: Path,
        ffmpeg_timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S,
        niceness: int = 0,
    ) -> None:
        self.database = database
        self.niceness = niceness
        self.storage = storage
        self.temp_dir = temp_dir
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix='waveform')
        self._closing = False

    def schedule(self, recording_id: uuid.UUID) -> None:
        """Off the finalize path: a user waits for the file, not for its picture."""
        self._pool.submit(self._compute_logged, recording_id)

    def compute(self, recording_id: uuid.UUID) -> list[float]:
        with self.database.session() as session:
            recording = session.get(Recording, recording_id)
        if recording is None or not lifecycle.is_playable(recording.status) or recording.duration_ms is None:
            return []
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        fmt = audio_format(recording.mime_type)
        with tempfile.NamedTemporaryFile(dir=self.temp_dir, suffix=f'.{fmt.extension}') as handle:
            self.storage.copy_to(recording_audio_key(recording), cast(BinaryIO, handle))
            handle.flush()
            # our own remuxed file, but read as the recording's container all the same: never a guess
            path, timeout_s = Path(handle.name), self.ffmpeg_timeout_s
            peaks = compute_peaks(path, recording.duration_ms, fmt=fmt, timeout_s=timeout_s, niceness=self.niceness)
        self._store(recording_id, json.dumps(peaks))
        return peaks

    def fill_missing(self, limit: int = 5) -> int:
        """Catch up on recordings whose waveform was lost to a restart."""
        query = (
            select(Recording.id)
            .where(lifecycle.playable(col(Recording.status)))
            .where(col(Recording.peaks).is_(None))
            .limit(limit)
        )
        with self.database.session() as session:
            missing = list(session.exec(query).all())
        for recording_id in missing:
            self._compute_logged(recording_id)
        return len(missing)

    def close(self) -> None:
        self._closing = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _compute_logged(self, recording_id: uuid.UUID) -> None:
        try:
            self.compute(recording_id)
        except AppError as error:
            if self._closing:  # cut off by shutdown, not bad audio: the next start tries again
                return
            log.warning('no waveform for recording %s: %s', recording_id, error.message)
            self._mark_unavailable(recording_id)
        except Exception:
            log.exception('computing the waveform of recording %s failed', recording_id)

    def _mark_unavailable(self, recording_id: uuid.UUID) -> None:
        self._store(recording_id, '[]')  # tried: do not try again

    def _store(self, recording_id: uuid.UUID, peaks: str) -> None:
        """One conditional UPDATE: a recording deleted meanwhile (by this instance or another) matches no row, where
        a read-then-write would fail its commit on the row that vanished."""
        statement = update(Recording).where(col(Recording.id) == recording_id).values(peaks=peaks)
        with self.database.session() as session:
            session.exec(statement)  # type: ignore[call-overload]
            session.commit()


def peaks_of(recording: Recording) -> list[float]:
    try:
        values = json.loads(recording.peaks or '[]')
    except ValueError:
        return []
    return [float(v) for v in values] if isinstance(values, list) else []
