"""Imports: a recording whose chunks come from a file the user chose, sent and stored like recorded audio.

An import is a recording with `original_mime_type` set. It is created with the file's declared size, which bounds
it (`max_import_bytes`) and tells when it has arrived in full: finalizing an import that has not (the sweeper
finding it idle, a client finishing early) refuses with how much is stored, and the recording keeps taking the rest
of its chunks, so choosing the same file again resumes it. Assembled, the file is kept as it came; what is played is
that file or a copy made from it (see audio/imported.py).
"""

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from services.audio.ffmpeg import encode_opus, remux
from services.audio.formats import AudioFormat, audio_format
from services.audio.imported import Playback, plan_for, probe
from services.audio.real_length import packet_length_ms
from services.core.database import Database
from services.core.errors import AudioProcessingFailed, Conflict, LimitReached
from services.core.models import Chunk, Recording
from services.recordings import lifecycle
from services.recordings.lifecycle import RecordingStatus
from services.recordings.service import RecordingService, clean_title, recording_audio_key
from services.storage.keys import original_key
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
# A file's last-modified time from the browser is believed only between these.
EARLIEST_DATE = datetime(1971, 1, 1, tzinfo=UTC)


class FileTooLarge(AudioProcessingFailed):
    status_code = 413


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = 2 * 2**30
    per_user: int = 3  # imports one user may have going (interrupted ones count until finished or deleted)
    max_recordings_per_user: int = 1000


def believable(moment: datetime | None, now: datetime) -> datetime | None:
    """A client's date for a file, if it could be one: after 1970 and not in the future (naive: taken as UTC)."""
    if moment is None:
        return None
    try:
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 or 9999 shifted past the calendar's ends
        return None
    return moment if EARLIEST_DATE < moment <= now else None


def megabytes(size: int) -> str:
    return f'{size / 1e6:.0f} MB' if size >= 10e6 else f'{size / 1e6:.1f} MB'


class ImportService:
    def __init__(self, *, database: Database, storage: Storage, limits: ImportLimits) -> None:
        self.database = database
        self.storage = storage
        self.limits = limits

    def create(
        self,
        *,
        user_id: uuid.UUID,
        mime_type: str,
        size_bytes: int,
        title: str | None = None,
        modified_at: datetime | None = None,
    ) -> Recording:
        """A new import of a file of `size_bytes`, refused in plain words if it may not begin."""
        fmt = audio_format(mime_type)
        if size_bytes <= 0:
            raise AudioProcessingFailed('the file is empty: there is no audio to import')
        if size_bytes > self.limits.max_bytes:
            most = megabytes(self.limits.max_bytes)
            raise FileTooLarge(f'the file is {megabytes(size_bytes)}; files of at most {most} can be imported')
        recording = Recording(
            user_id=user_id,
            mime_type=fmt.mime_type,
            original_mime_type=fmt.mime_type,
            original_bytes=size_bytes,
            title=clean_title(title or 'Imported audio'),
        )
        recording.created_at = believable(modified_at, recording.created_at) or recording.created_at
        with self.database.session() as session:
            self._admit(session, user_id)
            session.add(recording)
            session.commit()
            session.refresh(recording)
        return recording

    def stored_seqs(self, recording_id: uuid.UUID) -> list[int]:
        """The chunks of an import the server holds (the caller checked the owner), for a resume to skip."""
        with self.database.session() as session:
            query = select(Chunk.seq).where(Chunk.recording_id == recording_id).order_by(col(Chunk.seq))
            return list(session.exec(query).all())

    def _admit(self, session: Session, user_id: uuid.UUID) -> None:
        mine = select(func.count()).select_from(Recording).where(Recording.user_id == user_id)
        if session.exec(mine).one() >= self.limits.max_recordings_per_user:
            raise LimitReached(
                f'you have reached the limit of {self.limits.max_recordings_per_user} recordings; '
                'delete some to make room'
            )
        holds_chunks = select(Chunk.seq).where(Chunk.recording_id == Recording.id).exists()
        going = (  # an import refused at its first chunk holds nothing and does not count
            mine.where(col(Recording.original_mime_type).is_not(None))
            .where(lifecycle.status_in(lifecycle.ACCEPTS_AUDIO - {RecordingStatus.READY_OPEN}, col(Recording.status)))
            .where(holds_chunks)
        )
        if session.exec(going).one() >= self.limits.per_user:
            raise LimitReached(
                f'you have {self.limits.per_user} imports going: wait for one to finish, '
                'or delete an interrupted one, then import this file'
            )


def check_arrived(session: Session, recording: Recording) -> None:
    """Refuse to finish an import before all of its file is stored; its chunks may still come (a resume)."""
    stored = session.exec(select(func.coalesce(func.sum(Chunk.size), 0)).where(Chunk.recording_id == recording.id))
    stored_bytes, expected = int(stored.one()), recording.original_bytes or 0
    if stored_bytes > expected:
        raise Conflict(f'more than the file holds arrived ({megabytes(stored_bytes)} of {megabytes(expected)})')
    if stored_bytes < expected:
        raise Conflict(
            f'the import was interrupted with {megabytes(stored_bytes)} of {megabytes(expected)} stored: '
            'choose the same file again to finish it'
        )


class ImportAssembler:
    """Turns an import's joined bytes into the stored original and the file that is played."""

    def __init__(
        self, *, storage: Storage, ffmpeg_timeout_s: float, max_bytes: int, max_duration_ms: int, encoders: int = 2
    ) -> None:
        self.storage = storage
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self.max_bytes = max_bytes
        self.max_duration_ms = max_duration_ms
        self._encoders = threading.BoundedSemaphore(encoders)  # Opus copies at once, like the MP3 encodes

    def assemble(self, recording: Recording, joined: Path, folder: Path) -> dict[str, Any]:
        """Store the file and what is played from it; returns the recording's new values."""
        fmt = audio_format(recording.original_mime_type or recording.mime_type)
        size = joined.stat().st_size
        if size > self.max_bytes:
            raise FileTooLarge(f'the file is larger than the {megabytes(self.max_bytes)} an import may be')
        found = probe(joined, fmt)
        plan = plan_for(fmt, found.codec)
        played = self._playable(joined, folder, fmt, plan.playback, plan.plays_as)
        length_ms = packet_length_ms(played, plan.plays_as)  # the real length, whatever the headers claim
        if length_ms <= 0:
            raise AudioProcessingFailed('the file cannot be imported: it holds no sound')
        if length_ms > self.max_duration_ms:
            limit_h = round(self.max_duration_ms / 3_600_000, 1)  # the limit has a few seconds' slack
            raise AudioProcessingFailed(f'the file is longer than the {limit_h:g}-hour limit of one recording')
        stored = 0
        if played != joined:
            self.storage.put_file(original_key(recording.id, fmt.extension), joined)
            stored += size
        recording.mime_type = plan.plays_as.mime_type  # the audio key follows the played file's container
        self.storage.put_file(recording_audio_key(recording), played)
        values: dict[str, Any] = {
            'mime_type': plan.plays_as.mime_type,
            'duration_ms': length_ms,
            'size_bytes': stored + played.stat().st_size,
            'original_bytes': size,
        }
        if found.created_at is not None:
            values['created_at'] = found.created_at
        log.info('imported %s as %s (%s): %d ms', fmt.label, plan.plays_as.label, plan.playback, length_ms)
        return values

    def _playable(self, joined: Path, folder: Path, fmt: AudioFormat, playback: Playback, into: AudioFormat) -> Path:
        if playback == Playback.ORIGINAL:
            return joined
        target = folder / f'played.{into.extension}'
        if playback == Playback.REMUX:
            remux(joined, target, fmt, timeout_s=self.ffmpeg_timeout_s, into=into)
        else:
            with self._encoders:
                encode_opus(joined, target, fmt, into, timeout_s=self.ffmpeg_timeout_s)
        return target


def original_file(storage: Storage, recording: Recording) -> tuple[str, AudioFormat]:
    """Where the file the user imported is kept, and its type: apart from the played audio, or that audio itself."""
    if recording.original_mime_type is not None:
        fmt = audio_format(recording.original_mime_type)
        key = original_key(recording.id, fmt.extension)
        if storage.exists(key):
            return key, fmt
    return recording_audio_key(recording), audio_format(recording.mime_type)


def discard(database: Database, storage: Storage, recording: Recording) -> None:
    """A file that cannot be imported leaves nothing behind: its row, chunks and stored bytes go."""
    RecordingService(database=database, storage=storage).delete(user_id=recording.user_id, recording_id=recording.id)
