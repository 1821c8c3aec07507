"""MP3 copies for people whose players want MP3: made once, in the background, with progress, then cached.

ffmpeg encodes straight from the stored file rather than through pydub: pydub decodes the whole recording
into memory first (1–2 GB for an hour, measured), while ffmpeg streams it in ~55 MB and reports progress.
"""

import asyncio
import contextlib
import logging
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from sqlmodel import col, update

from services.audio.ffmpeg import DEFAULT_FFMPEG_TIMEOUT_S, ffmpeg_reading, local_url, processing_failed, run_ffmpeg
from services.audio.formats import audio_format
from services.core.database import Database
from services.core.errors import NotFound, ServiceUnavailable, TooManyRequests
from services.core.models import Recording
from services.recordings.lifecycle import is_playable
from services.recordings.quota import StorageQuota
from services.recordings.service import load_owned, recording_audio_key
from services.storage import keys as storage_keys
from services.storage.protocol import Storage

log = logging.getLogger(__name__)
MP3_TYPE = 'audio/mpeg'
# What a copy at `-q:a 5` takes at most, about: 128 kbit/s (speech in mono comes out nearer 60).
MP3_BYTES_PER_S_ESTIMATE = 16_000
Progress = Callable[[float], None]


def recording_mp3_key(recording: Recording) -> str:
    """Where a recording's MP3 copy lives, once made."""
    return storage_keys.mp3_key(recording.id)


class _Encode:
    """One MP3 encode in flight: every caller waits on `done` and hears the same progress."""

    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id
        self.done: Future[None] = Future()
        self.listeners: list[Progress] = []

    def progress(self, fraction: float) -> None:
        for listener in list(self.listeners):
            try:
                listener(fraction)
            except Exception:  # one caller's broken progress bar must not stop everyone's MP3
                log.exception('an MP3 progress listener failed')
                self.listeners.remove(listener)


class ExportService:
    """Encodes run on a pool of their own, `max_concurrent_encoders` at once, and nobody else's thread waits for
    one: a request handler awaits `await_mp3`, holding no thread, so a crowd of MP3 requests cannot use up the
    threads every other request needs. Each user may have `max_exports_per_user` encodes going (asking again for
    one already going joins it), and at most `max_queued_exports` wait or run in all."""

    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        temp_dir: Path,
        max_concurrent_encoders: int = 2,
        max_exports_per_user: int = 2,
        max_queued_exports: int = 32,
        ffmpeg_timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S,
        quota: StorageQuota | None = None,
        niceness: int = 0,
    ) -> None:
        self.database = database
        self.niceness = niceness
        self.quota = quota
        self.storage = storage
        self.temp_dir = temp_dir
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self.max_exports_per_user = max_exports_per_user
        self.max_queued_exports = max_queued_exports
        self._encoders = ThreadPoolExecutor(max_concurrent_encoders, thread_name_prefix='mp3-encoder')
        self._in_flight: dict[uuid.UUID, _Encode] = {}
        self._in_flight_lock = threading.Lock()

    def mp3(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, progress: Progress | None = None) -> Recording:
        """Make (or find) the MP3 of a ready recording, blocking until it is stored; `progress` hears 0..1."""
        recording, encode = self._join(user_id, recording_id, progress)
        if encode is not None:
            encode.done.result()
        if progress:
            progress(1.0)
        return recording

    async def await_mp3(
        self, *, user_id: uuid.UUID, recording_id: uuid.UUID, progress: Progress | None = None
    ) -> Recording:
        """`mp3` for the event loop: the wait holds no thread; a caller that gives up leaves the encode running."""
        recording, encode = await asyncio.to_thread(self._join, user_id, recording_id, progress)
        if encode is not None:
            await asyncio.shield(asyncio.wrap_future(encode.done))
        if progress:
            progress(1.0)
        return recording

    def close(self) -> None:
        """Encodes not yet begun fail plainly instead of leaving their callers waiting forever."""
        self._encoders.shutdown(wait=False, cancel_futures=True)
        with self._in_flight_lock:
            waiting = [encode for encode in self._in_flight.values() if not encode.done.done()]
        for encode in waiting:
            with contextlib.suppress(InvalidStateError):
                encode.done.set_exception(ServiceUnavailable('the server is shutting down; ask for the MP3 again'))

    def _join(
        self, user_id: uuid.UUID, recording_id: uuid.UUID, progress: Progress | None
    ) -> tuple[Recording, _Encode | None]:
        """The user's ready recording and the encode that makes its MP3 (None: it is stored already).

        Single flight: the first caller starts the encode on the pool, later callers join it."""
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if not is_playable(recording.status):
            raise NotFound('the audio is not ready yet')
        if self.storage.exists(recording_mp3_key(recording)):
            return recording, None
        if self.quota is not None:  # the copy counts in the quota: refuse it before spending an encode on it
            estimate = MP3_BYTES_PER_S_ESTIMATE * (recording.duration_ms or 0) // 1000
            self.quota.check_room(user_id, estimate, 'an MP3 copy of this recording')
        with self._in_flight_lock:
            encode = self._in_flight.get(recording.id)
            if encode is None:
                self._admit(user_id)
                encode = self._in_flight[recording.id] = _Encode(user_id)
                self._encoders.submit(self._encode_once, recording, encode)
            if progress:
                encode.listeners.append(progress)
        return recording, encode

    def _admit(self, user_id: uuid.UUID) -> None:
        """Called under the lock: a new encode must fit the user's share and the server's queue."""
        mine = sum(1 for encode in self._in_flight.values() if encode.user_id == user_id)
        if mine >= self.max_exports_per_user:
            raise TooManyRequests(
                f'{mine} MP3 copies of yours are being made; ask for this one again when they are done', 10
            )
        if len(self._in_flight) >= self.max_queued_exports:
            raise ServiceUnavailable('the server is making many MP3 copies right now; try again in a minute')

    def _encode_once(self, recording: Recording, encode: _Encode) -> None:
        try:
            if not self.storage.exists(recording_mp3_key(recording)):  # a flight that landed just before this one began
                self._encode(recording, encode.progress)
            encode.done.set_result(None)
        except BaseException as error:
            encode.done.set_exception(error)
        finally:
            with self._in_flight_lock:
                del self._in_flight[recording.id]

    def _encode(self, recording: Recording, progress: Progress) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        fmt = audio_format(recording.mime_type)
        with tempfile.TemporaryDirectory(dir=self.temp_dir, prefix='mp3-') as folder:
            source, target = Path(folder) / f'source.{fmt.extension}', Path(folder) / 'audio.mp3'
            with source.open('wb') as handle:
                self.storage.copy_to(recording_audio_key(recording), handle)
            output = ('-map', '0:a:0', '-ac', '1', '-c:a', 'libmp3lame', '-q:a', '5', '-progress', 'pipe:1')
            total_us = max(1, (recording.duration_ms or 1) * 1000)
            command = ffmpeg_reading(source, fmt, *output, '-f', 'mp3', local_url(target))
            read = _progress_reader(total_us, progress)
            run = run_ffmpeg(command, timeout_s=self.ffmpeg_timeout_s, read_output=read, niceness=self.niceness)
            if run.returncode != 0 or not target.exists():
                raise processing_failed(run, fmt, 'the MP3 could not be made')
            size = target.stat().st_size
            self.storage.put_file(recording_mp3_key(recording), target)
        self._count_or_forget(recording, size)

    def _count_or_forget(self, recording: Recording, size: int) -> None:
        """The copy's size goes on the recording, for the quota. A delete that raced this encode removed the row
        first; then this copy is no one's and must go."""
        statement = update(Recording).where(col(Recording.id) == recording.id).values(mp3_bytes=size)
        with self.database.session() as session:
            still_there = session.exec(statement).rowcount == 1  # type: ignore[call-overload]
            session.commit()
        if not still_there:
            self.storage.delete_prefix(recording_mp3_key(recording))
            raise NotFound('recording not found')


def _progress_reader(total_us: int, progress: Progress) -> Callable[[IO[bytes]], None]:
    """Turns ffmpeg's `-progress` lines (`out_time_us=…`) into fractions, held below 1 until the file is stored."""

    def read(stream: IO[bytes]) -> None:
        for raw in stream:
            key, _, value = raw.decode(errors='replace').strip().partition('=')
            if key == 'out_time_us' and value.isdigit():
                progress(min(0.99, int(value) / total_us))

    return read
