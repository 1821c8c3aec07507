"""The servers under test, each its own process on a free loopback port, and how their CPU and memory are read."""

import contextlib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import psutil

from tests.support.app_server import ROOT, AppServer, free_port

BENCH_SECRET = 'bench-secret-of-at-least-32-characters'
MB = 1024 * 1024


def app_server(workspace: Path, data_dir: Path | None = None, script: str = 'main.py', **env: str) -> AppServer:
    """The real app (main.py) on the workspace; NiceGUI's browser storage lives there too, so identities persist.

    `data_dir` (default: the workspace's `data`) lets several instances share one, each with its own NiceGUI
    folder; each logs to `app-<port>.log` beside the data dir."""
    settings = {
        'VR_SECRET': BENCH_SECRET,
        'NICEGUI_STORAGE_PATH': str(workspace / 'nicegui'),
        # Every simulated recorder comes from 127.0.0.1, so the per-address limits would count them as one client.
        'VR_ONBOARD_PER_ADDRESS_PER_HOUR': '1000000',
        'VR_TRANSCRIBE': 'false',  # the figures measure ingest and playback, not a transcriber sharing the cores
        'VR_VR_CONNECTS_PER_ADDRESS_PER_MINUTE': '1000000',
        **env,
    }
    return AppServer(data_dir or workspace / 'data', env=settings, script=script)


class BaselineServer:
    """A baseline server from this folder (`bare_server`, `static_server`) as its own process."""

    def __init__(self, workspace: Path, module: str, *args: str) -> None:
        self.port = free_port()
        self.command = [sys.executable, '-m', f'bench.{module}', '--port', str(self.port), *args]
        self.log_path = workspace / f'{module}-{self.port}.log'
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def start(self, timeout: float = 20) -> 'BaselineServer':
        with self.log_path.open('ab') as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f'{self.command} did not start: {self.log_path.read_text()[-2000:]}')

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pid_of(server: AppServer | BaselineServer) -> int:
    assert server.process is not None
    return server.process.pid


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def workers_of(app_pid: int) -> list[psutil.Process]:
    """The app's transcript worker processes (full pass and live), not its passing ffmpeg children."""
    return [child for child in psutil.Process(app_pid).children() if 'worker' in child.cmdline()]


def total_cpu_seconds(processes: list[psutil.Process]) -> float:
    """Their CPU seconds; one that has ended (a worker restarted) counts no more."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += cpu_seconds(process)
    return total


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss / MB)


class PeakRss:
    """Samples a process and its children (ffmpeg) every few ms: the peak of each. getrusage cannot do this:
    on Linux a child's ru_maxrss starts from its parent's high-water mark at fork."""

    def __init__(self, pid: int, interval_s: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.start_mb = rss_mb(self.process)
        self.peak_mb = self.start_mb
        self.children_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> 'PeakRss':
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_mb = max(self.peak_mb, rss_mb(self.process))
                children = 0.0
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        children += rss_mb(child)
                self.children_peak_mb = max(self.children_peak_mb, children)
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval_s)
