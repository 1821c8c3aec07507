"""MP3 copies for people whose players want MP3: made once, in the background, with progress, then cached.

ffmpeg encodes straight from the stored file rather than through pydub: pydub decodes the whole recording
into memory first (1–2 GB for an hour, measured), while ffmpeg streams it in ~55 MB and reports progress.
"""

import logging
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO

from ..database import Database
from ..errors import NotFound
from ..models import Recording, RecordingStatus
from ..recordings import audio_key, load_owned
from ..storage import keys as storage_keys
from ..storage.protocol import Storage
from .ffmpeg import DEFAULT_FFMPEG_TIMEOUT_S, ffmpeg_reading, local_url, processing_failed, run_ffmpeg
from .formats import audio_format

log = logging.getLogger(__name__)
MP3_TYPE = 'audio/mpeg'
Progress = Callable[[float], None]


def mp3_key(recording: Recording) -> str:
    return storage_keys.mp3_key(recording.id)


class _Encode:
    """One MP3 encode in flight: later callers wait on `done` and hear the same progress."""

    def __init__(self) -> None:
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
    def __init__(
        self,
        *,
        database: Database,
        storage: Storage,
        temp_dir: Path,
        max_concurrent_encoders: int = 2,
        ffmpeg_timeout_s: float = DEFAULT_FFMPEG_TIMEOUT_S,
    ) -> None:
        self.database = database
        self.storage = storage
        self.temp_dir = temp_dir
        self.ffmpeg_timeout_s = ffmpeg_timeout_s
        self._encoder_slots = threading.BoundedSemaphore(max_concurrent_encoders)  # encodes are CPU-bound
        self._in_flight: dict[uuid.UUID, _Encode] = {}
        self._in_flight_lock = threading.Lock()

    def mp3(self, *, user_id: uuid.UUID, recording_id: uuid.UUID, progress: Progress | None = None) -> Recording:
        """Make (or find) the MP3 of a ready recording; `progress` hears fractions from 0 to 1."""
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if recording.status != RecordingStatus.READY:
            raise NotFound('the audio is not ready yet')
        if not self.storage.exists(mp3_key(recording)):
            self._encode_once(recording, progress)
        if progress:
            progress(1.0)
        return recording

    def _encode_once(self, recording: Recording, progress: Progress | None) -> None:
        """Single flight: the first caller encodes, the others wait for its result (or its error)."""
        with self._in_flight_lock:
            encode = self._in_flight.get(recording.id)
            leading = encode is None
            if encode is None:
                encode = self._in_flight[recording.id] = _Encode()
            if progress:
                encode.listeners.append(progress)
        if not leading:
            encode.done.result()
            return
        try:
            if not self.storage.exists(mp3_key(recording)):  # a flight that landed just before this one began
                with self._encoder_slots:
                    self._encode(recording, encode.progress)
            encode.done.set_result(None)
        except BaseException as error:
            encode.done.set_exception(error)
            raise
        finally:
            with self._in_flight_lock:
                del self._in_flight[recording.id]

    def _encode(self, recording: Recording, progress: Progress) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        fmt = audio_format(recording.mime_type)
        with tempfile.TemporaryDirectory(dir=self.temp_dir, prefix='mp3-') as folder:
            source, target = Path(folder) / f'source.{fmt.extension}', Path(folder) / 'audio.mp3'
            with source.open('wb') as handle:
                self.storage.copy_to(audio_key(recording), handle)
            output = ('-map', '0:a:0', '-ac', '1', '-c:a', 'libmp3lame', '-q:a', '5', '-progress', 'pipe:1')
            total_us = max(1, (recording.duration_ms or 1) * 1000)
            command = ffmpeg_reading(source, fmt, *output, '-f', 'mp3', local_url(target))
            run = run_ffmpeg(command, timeout_s=self.ffmpeg_timeout_s, read_output=_progress_reader(total_us, progress))
            if run.returncode != 0 or not target.exists():
                raise processing_failed(run, fmt, 'the MP3 could not be made')
            self.storage.put_file(mp3_key(recording), target)
        self._forget_if_deleted(recording)

    def _forget_if_deleted(self, recording: Recording) -> None:
        """A delete that raced this encode removed the rows first; then this copy is no one's and must go."""
        with self.database.session() as session:
            still_there = session.get(Recording, recording.id) is not None
        if not still_there:
            self.storage.delete_prefix(mp3_key(recording))
            raise NotFound('recording not found')


def _progress_reader(total_us: int, progress: Progress) -> Callable[[IO[bytes]], None]:
    """Turns ffmpeg's `-progress` lines (`out_time_us=…`) into fractions, held below 1 until the file is stored."""

    def read(stream: IO[bytes]) -> None:
        for raw in stream:
            key, _, value = raw.decode(errors='replace').strip().partition('=')
            if key == 'out_time_us' and value.isdigit():
                progress(min(0.99, int(value) / total_us))

    return read
