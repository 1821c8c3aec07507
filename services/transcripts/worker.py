"""The transcription worker: a process of its own (`python main.py worker`), never the web process.

One job at a time, at a lower CPU priority than the app, so recording and playback stay responsive while it works:
the hearing runs on a compute thread of its own (`compute_priority`, SCHED_IDLE by default), while this process's
other threads, which write the lease, the progress and the result to the database, keep a priority that never holds
the web process's commits up (core/priority.py). When the queue is empty it queues a few recordings made before
transcripts existed, newest first.
"""

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

from services.audio.formats import audio_format
from services.core.errors import AppError, ServiceUnavailable
from services.core.models import Recording
from services.recordings.service import recording_audio_key
from services.storage.protocol import Storage
from services.transcripts.engine import Transcriber, Transcription, TranscriptionFailed
from services.transcripts.queue import Job, TranscriptQueue
from services.transcripts.shapes import encode

log = logging.getLogger(__name__)
BACKFILL_EVERY_S = 30.0
PROGRESS_EVERY_S = 1.0


class Progress:
    """The fraction heard so far, set by the compute thread and written by the lease thread."""

    value: float | None = None


class Stopped(Exception):
    """The job is no longer ours (queued again, deleted, or its lease was taken over), or the worker is stopping."""


class TranscriptWorker:
    def __init__(
        self,
        *,
        queue: TranscriptQueue,
        storage: Storage,
        transcriber: Callable[[], Transcriber],
        temp_dir: Path,
        timeout_s: float,
        poll_s: float = 2.0,
        compute_priority: Callable[[], None] | None = None,
    ) -> None:
        """`compute_priority` lowers the thread that hears the audio (and what it starts) when it begins."""
        self.queue = queue
        self.database = queue.database
        self.storage = storage
        self._make_transcriber = transcriber
        self._transcriber: Transcriber | None = None
        self.temp_dir = temp_dir
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._compute = ThreadPoolExecutor(1, thread_name_prefix='transcribe', initializer=compute_priority)

    def run(self, stop: threading.Event) -> None:
        next_backfill = 0.0
        while not stop.is_set():
            try:
                if self.work_once(stop):
                    continue
                if time.monotonic() >= next_backfill:
                    next_backfill = time.monotonic() + BACKFILL_EVERY_S
                    if self.queue.backfill():
                        continue
            except AppError as error:  # the database is away: wait and try again
                log.warning('transcription worker: %s', error.message)
            stop.wait(self.poll_s)
        self._compute.shutdown(wait=False)

    def work_once(self, stop: threading.Event | None = None) -> bool:
        """Claim one job and see it through; False when there was none."""
        job = self.queue.claim()
        if job is None:
            return False
        lost, progress = threading.Event(), Progress()
        heartbeat = threading.Thread(target=self._keep_lease, args=(job, lost, progress), daemon=True)
        heartbeat.start()
        try:
            self._run(job, lambda: lost.is_set() or bool(stop and stop.is_set()), progress)
        finally:
            lost.set()
            heartbeat.join()
        return True

    def _run(self, job: Job, given_up: Callable[[], bool], progress: Progress) -> None:
        started = time.monotonic()
        try:
            recording, heard = self._compute.submit(self._transcribe, job, given_up, progress).result()
        except Stopped:
            if not self.queue.release(job):
                log.info('transcript of %s was queued again or deleted while it was being made', job.recording_id)
            return
        except ServiceUnavailable as error:  # storage or database down for now: later, not never
            log.warning('transcript of %s must wait: %s', job.recording_id, error.message)
            self.queue.release(job, count_attempt=True)
            return
        except AppError as error:
            log.warning('no transcript for %s: %s', job.recording_id, error.message)
            self.queue.fail(job, error.message)
            return
        except Exception:
            log.exception('transcribing %s failed', job.recording_id)
            self.queue.fail(job, 'transcribing failed unexpectedly')
            return
        assert recording.duration_ms is not None
        text, stored = encode(heard.segments, recording.duration_ms)
        if self.queue.complete(job, text=text, segments=stored, language=heard.language):
            took = time.monotonic() - started
            log.info(
                'transcribed %s: %d ms of audio in %.1f s, in %s',
                job.recording_id,
                recording.duration_ms,
                took,
                heard.language or 'no language (no speech)',
            )

    def _transcribe(
        self, job: Job, given_up: Callable[[], bool], progress: Progress
    ) -> tuple[Recording, Transcription]:
        """On the compute thread: no database write here (only reads), see the module's docstring."""
        with self.database.session() as session:
            recording = session.get(Recording, job.recording_id)
        if recording is None:
            raise Stopped
        if recording.duration_ms is None:
            raise TranscriptionFailed('there is no audio to transcribe')
        fmt = audio_format(recording.mime_type)

        def heard_so_far(done: float) -> None:
            if given_up():  # the lease thread found the job no longer ours, or the worker is stopping
                raise Stopped
            progress.value = done

        self.temp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.temp_dir, prefix='transcribe-', suffix=f'.{fmt.extension}') as audio:
            self.storage.copy_to(recording_audio_key(recording), cast(BinaryIO, audio))
            audio.flush()
            transcriber = self.transcriber()
            heard = transcriber.transcribe_file(
                Path(audio.name),
                fmt,
                language=job.language,
                vocabulary=job.vocabulary,
                duration_ms=recording.duration_ms,
                timeout_s=self.timeout_s,
                on_progress=heard_so_far,
            )
        return recording, heard

    def transcriber(self) -> Transcriber:
        """The model is loaded on the first job and kept: an idle worker stays small."""
        if self._transcriber is None:
            self._transcriber = self._make_transcriber()
        return self._transcriber

    def _keep_lease(self, job: Job, lost: threading.Event, progress: Progress) -> None:
        """The lease renewed every third of it, and the progress written each second it moved."""
        interval = max(0.2, self.queue.lease.total_seconds() / 3)
        renewed_at, written = time.monotonic(), progress.value
        while not lost.wait(min(interval, PROGRESS_EVERY_S)):
            done = progress.value
            if done == written and time.monotonic() - renewed_at < interval:
                continue
            try:
                if not self.queue.renew(job, progress=done if done != written else None):
                    lost.set()
                renewed_at, written = time.monotonic(), done
            except AppError as error:
                log.warning('could not renew the lease on %s: %s', job.recording_id, error.message)
