"""The real app as a subprocess on a free loopback port, as a user's machine would run it."""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


# Ports below Linux's ephemeral range (32768 up), so no outgoing connection holds one. Each pytest-xdist worker
# takes ports from a block of its own, so two workers never pick the same port between its probe and its use.
PORT_BLOCK = 1000
FIRST_PORT = 20000 + PORT_BLOCK * int(os.environ.get('PYTEST_XDIST_WORKER', 'gw-1').removeprefix('gw'))
_next_ports = itertools.cycle(range(FIRST_PORT + PORT_BLOCK, FIRST_PORT + 2 * PORT_BLOCK))


def free_port() -> int:
    """A loopback port nothing listens on now, from this process's block."""
    for port in itertools.islice(_next_ports, PORT_BLOCK):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise RuntimeError(f'no free port in {FIRST_PORT + PORT_BLOCK}..{FIRST_PORT + 2 * PORT_BLOCK}')


def stop_process(process: 'subprocess.Popen[bytes] | None') -> None:
    """SIGTERM, then SIGKILL if it has not ended within 10 s."""
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_healthy(
    process: 'subprocess.Popen[bytes]', url: str, what: str, timeout: float, log: Callable[[], str]
) -> None:
    """Poll `url` until it answers 200; a process that exits or stays silent fails with the tail of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{what} exited with {process.returncode}:\n{log()}')
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f'{what} did not become healthy in {timeout} s:\n{log()}')


def tracebacks(log: str) -> list[str]:
    """Each traceback in `log`, from the line before it (what the logger said) to its exception line."""
    lines = log.splitlines()
    found = []
    for start, line in enumerate(lines):
        if 'Traceback' in line:
            end = start + 1
            while end < len(lines) and lines[end].startswith((' ', '\t')):
                end += 1
            found.append('\n'.join(lines[max(start - 1, 0) : end + 1]))
    return found


class AppServer:
    def __init__(
        self, data_dir: Path, *, port: int | None = None, env: dict[str, str] | None = None, script: str = 'main.py'
    ) -> None:
        self.data_dir = data_dir
        self.script = script
        self.port = port or free_port()
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST', 'NICEGUI', 'VR_'))}
        self.env = {
            **inherited,
            'VR_HOST': '127.0.0.1',
            'VR_PORT': str(self.port),
            'VR_DATA_DIR': str(data_dir),
            'VR_SECRET': 'browser-test-secret-of-at-least-32-chars',
            # A transcriber working beside a timing-sensitive test would share its 2 cores; the transcript tests
            # turn it on (VR_TRANSCRIBE=true).
            'VR_TRANSCRIBE': 'false',
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f'app-{self.port}.log'

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def start(self, timeout: float = 30) -> 'AppServer':
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open('ab')
        self.process = subprocess.Popen(
            [sys.executable, self.script], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        # NiceGUI treats a PYTEST_* environment as its own screen test: such an app exits at once
        wait_until_healthy(self.process, f'{self.url}/api/healthz', 'the app', timeout, self.log)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, like a crash."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-5000:] if self.log_path.exists() else ''

    def assert_clean_log(self) -> None:
        """Fail with the offending lines if the app ever logged a traceback; a fixture checks this at teardown, so
        it holds for whichever of its tests ran, in any order."""
        found = tracebacks(self.log_path.read_text(errors='replace')) if self.log_path.exists() else []
        assert not found, f'the app on port {self.port} logged unexpected errors:\n\n' + '\n\n'.join(found)
