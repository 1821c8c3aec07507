"""The workers as processes: VR_TRANSCRIBE_WORKERS of them (one per core by default), each doing one job at a time on
one CPU thread, which measured more work done than fewer processes with more threads. In the embedded mode the app
starts and stops them; `python main.py worker` runs them for an external deployment (one in its own process, or a
pool of child processes).

Every worker runs at a lower CPU priority (nice 10, its compute threads also under SCHED_IDLE on Linux;
`VR_BACKGROUND_PRIORITY`, see core/priority.py) and, when the app or a pool started it, ends when its parent is
gone, even if the parent was killed and never said goodbye.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from functools import partial
from pathlib import Path

from services.container import build_storage
from services.core.config import Settings
from services.core.database import Database
from services.core.priority import database_priority, lower_priority
from services.core.schema import upgrade
from services.transcripts.engine import Transcriber
from services.transcripts.live_store import LiveTranscripts
from services.transcripts.live_worker import LiveWorker
from services.transcripts.models import load_model, model_folder, model_spec
from services.transcripts.queue import TranscriptQueue
from services.transcripts.worker import TranscriptWorker

log = logging.getLogger(__name__)
CHILD_FLAG = '--child'  # a worker the app or a pool started: it stops when that parent is gone
LIVE_FLAG = '--live'  # the live worker: hears recordings while they are made
WORKER_NICENESS = 10
# Above the full-pass workers (a live word is late in seconds, a transcript in minutes), below the web process.
LIVE_NICENESS = 5
STOP_TIMEOUT_S = 10.0


def run_workers(settings: Settings, *, main_file: Path, child: bool = False) -> None:
    """`python main.py worker`: VR_TRANSCRIBE_WORKERS workers, until SIGTERM or SIGINT. One works in this process;
    more are child processes, started, restarted if they die and stopped here."""
    if not settings.transcribe:
        log.info('transcripts are off (VR_TRANSCRIBE=false): the worker has nothing to do')
        return
    if child or settings.transcribe_workers == 1:
        run_worker(settings, child=child)
        return
    lower_priority(database_priority(settings.background_priority), WORKER_NICENESS)  # the children start at it
    model_folder(model_spec(settings.transcribe_model), settings.data_dir)  # a bad model is said once, here
    stop = stop_on_signals()
    pool = WorkerPool(main_file, settings.transcribe_workers)
    pool.start()
    log.info('%d transcription workers started', settings.transcribe_workers)
    stop.wait()
    pool.stop()


def run_worker(settings: Settings, *, child: bool = False) -> None:
    """One worker in this process, until SIGTERM or SIGINT (or, `child`, until the process that started it is gone)."""
    lower_priority(database_priority(settings.background_priority), WORKER_NICENESS)
    spec = model_spec(settings.transcribe_model)
    folder = model_folder(spec, settings.data_dir)  # a missing or damaged model is said now, before any job is taken
    database = migrated_database(settings)
    queue = TranscriptQueue(
        database=database, lease=timedelta(seconds=settings.transcribe_lease_s), language=settings.transcribe_language
    )
    worker = TranscriptWorker(
        queue=queue,
        storage=build_storage(settings),
        # checked again as it loads: the joined base is made again if it was damaged meanwhile
        transcriber=lambda: Transcriber(load_model(model_folder(spec, settings.data_dir))),
        temp_dir=settings.data_dir / 'tmp',
        timeout_s=settings.transcribe_timeout_s,
        compute_priority=partial(lower_priority, settings.background_priority, WORKER_NICENESS),
    )
    stop = stop_on_signals()
    if child:
        _stop_when_orphaned(stop)
    log.info('transcription worker %d ready (model %s in %s)', os.getpid(), spec.name, folder)
    try:
        worker.run(stop)
    finally:
        database.dispose()
        log.info('transcription worker %d stopped', os.getpid())


def run_live_worker(settings: Settings, *, child: bool = False) -> None:
    """`python main.py worker --live`: the live worker (live_worker.py), until SIGTERM or SIGINT (or, `child`, until
    the process that started it is gone). One per instance: its threads share one model."""
    if not settings.transcribe or settings.live_transcripts == 0:
        log.info('live transcripts are off (VR_TRANSCRIBE=false or VR_LIVE_TRANSCRIPTS=0): nothing to do')
        return
    lower_priority(database_priority(settings.background_priority), LIVE_NICENESS)
    spec = model_spec(settings.transcribe_model)
    folder = model_folder(spec, settings.data_dir)
    database = migrated_database(settings)
    worker = LiveWorker(
        store=LiveTranscripts(database=database),
        storage=build_storage(settings),
        model=lambda: load_model(model_folder(spec, settings.data_dir), workers=settings.live_threads),
        threads=settings.live_threads,
        max_streams=settings.live_transcripts,
        language=settings.transcribe_language,
        poll_s=min(settings.live_poll_s, 0.25),
        compute_priority=partial(lower_priority, settings.background_priority, LIVE_NICENESS),
    )
    stop = stop_on_signals()
    if child:
        _stop_when_orphaned(stop)
    log.info('live worker %d ready (model %s in %s, %d streams)', os.getpid(), spec.name, folder, worker.max_streams)
    try:
        worker.run(stop)
    finally:
        database.dispose()
        log.info('live worker %d stopped', os.getpid())


def migrated_database(settings: Settings) -> Database:
    """The database a worker process reads and writes, brought to the newest schema first if the app does that."""
    database = Database(settings.resolved_database_url)
    if settings.auto_migrate:
        upgrade(database.engine)
    return database


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: stop.set())
    return stop


def _stop_when_orphaned(stop: threading.Event) -> None:
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning('the process that started this worker is gone; stopping')
                stop.set()

    threading.Thread(target=watch, daemon=True, name='parent-watch').start()


class WorkerPool:
    """Worker processes started together, each restarted if it dies, and stopped together: the app's own (embedded
    mode) and `python main.py worker`'s when it runs more than one."""

    def __init__(self, main_file: Path, count: int, *, live: bool = False, restart_after_s: float = 10.0) -> None:
        command = [sys.executable, str(main_file), 'worker', *([LIVE_FLAG] if live else []), CHILD_FLAG]
        self.workers = [WorkerProcess(command, main_file.parent, restart_after_s) for _ in range(count)]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        """All at once, so stopping takes one worker's time, not the sum. No arguments: NiceGUI hands its app to
        shutdown handlers that take one."""
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.wait()


class WorkerProcess:
    """One worker process: started, started again if it dies (waiting longer each time), stopped."""

    def __init__(self, command: list[str], cwd: Path, restart_after_s: float) -> None:
        self.command = command
        self.cwd = cwd
        self.restart_after_s = restart_after_s
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._supervise, daemon=True, name='transcription-worker')
        self._watcher.start()

    def terminate(self) -> None:
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()  # the job in hand goes back to the queue

    def wait(self) -> None:
        if self._watcher is not None:
            self._watcher.join(timeout=STOP_TIMEOUT_S)  # it returns once its process has ended
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()  # deaf to SIGTERM for STOP_TIMEOUT_S: its job goes back to the queue when the lease ends
            process.wait()

    def _supervise(self) -> None:
        delay = self.restart_after_s
        while not self._stopping.is_set():
            try:
                self.process = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.DEVNULL)
            except OSError as error:
                log.error('the transcription worker cannot be started: %s', error)
                return
            if self._stopping.is_set():  # stop() came while it was being started
                self.process.terminate()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            log.error('the transcription worker stopped (exit %s); starting it again in %.0f s', code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 600.0)
