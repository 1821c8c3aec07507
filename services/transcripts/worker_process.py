"""The worker as a process: `python main.py worker` runs one; in the embedded mode the app starts and stops its own.

The worker lowers its own CPU priority (nice 10) and, when the app started it, ends when the app is gone, even if
the app was killed and never said goodbye.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from services.container import build_storage
from services.core.config import Settings
from services.core.database import Database
from services.core.schema import upgrade
from services.transcripts.engine import Transcriber, check_model, load_model, model_folder
from services.transcripts.queue import TranscriptQueue
from services.transcripts.worker import TranscriptWorker

log = logging.getLogger(__name__)
EMBEDDED_FLAG = '--embedded'
WORKER_NICENESS = 10
STOP_TIMEOUT_S = 10.0


def run_worker(settings: Settings, *, embedded: bool = False) -> None:
    """Work until SIGTERM or SIGINT (or, `embedded`, until the app that started us is gone)."""
    if not settings.transcribe:
        log.info('transcripts are off (VR_TRANSCRIBE=false): the worker has nothing to do')
        return
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        log.warning('could not lower the worker priority')
    folder, sha256 = model_folder(settings.transcribe_model)
    check_model(folder, sha256)  # a missing or damaged model is said now, before any job is taken
    database = Database(settings.resolved_database_url)
    if settings.auto_migrate:
        upgrade(database.engine)
    queue = TranscriptQueue(
        database=database, lease=timedelta(seconds=settings.transcribe_lease_s), language=settings.transcribe_language
    )
    worker = TranscriptWorker(
        queue=queue,
        storage=build_storage(settings),
        transcriber=lambda: Transcriber(load_model(folder, sha256)),
        temp_dir=settings.data_dir / 'tmp',
        timeout_s=settings.transcribe_timeout_s,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: stop.set())
    if embedded:
        _stop_when_orphaned(stop)
    log.info('transcription worker %d ready (model %s)', os.getpid(), folder)
    try:
        worker.run(stop)
    finally:
        database.dispose()
        log.info('transcription worker %d stopped', os.getpid())


def _stop_when_orphaned(stop: threading.Event) -> None:
    parent = os.getppid()

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning('the app that started this worker is gone; stopping')
                stop.set()

    threading.Thread(target=watch, daemon=True, name='parent-watch').start()


class EmbeddedWorker:
    """The app's own worker process, started with the app, restarted if it dies, stopped with the app."""

    def __init__(self, main_file: Path, *, restart_after_s: float = 10.0) -> None:
        self.command = [sys.executable, str(main_file), 'worker', EMBEDDED_FLAG]
        self.cwd = main_file.parent
        self.restart_after_s = restart_after_s
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._supervise, daemon=True, name='transcription-worker')
        self._watcher.start()

    def stop(self) -> None:
        """No arguments: NiceGUI hands its app to shutdown handlers that take one."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()  # the job in hand goes back to the queue
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=STOP_TIMEOUT_S)

    def _supervise(self) -> None:
        delay = self.restart_after_s
        while not self._stopping.is_set():
            try:
                self.process = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.DEVNULL)
            except OSError as error:
                log.error('the transcription worker cannot be started: %s', error)
                return
            code = self.process.wait()
            if self._stopping.is_set():
                return
            log.error('the transcription worker stopped (exit %s); starting it again in %.0f s', code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 600.0)
