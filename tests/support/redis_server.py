"""A throwaway Redis (Debian's `redis-server`) on a free loopback port, nothing written to disk."""

import subprocess
import time
from pathlib import Path

from tests.support.app_server import free_port, stop_process
from tests.support.audio_samples import require


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'redis://127.0.0.1:{self.port}/0'

    def start(self, timeout: float = 10) -> 'RedisServer':
        executable = require('redis-server')  # fail loudly, never skip: `make test` installs it
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [executable, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
        self.process = subprocess.Popen([*command, '--dir', str(self.folder)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f'redis-server exited with {self.process.returncode}')
            time.sleep(0.1)
        raise RuntimeError(f'redis-server did not answer on port {self.port} in {timeout} s')

    def ping(self) -> bool:
        answer = subprocess.run([require('redis-cli'), '-p', str(self.port), 'ping'], capture_output=True, timeout=5)
        return answer.stdout.strip() == b'PONG'

    def keys(self, pattern: str = '*') -> list[str]:
        listed = subprocess.run(
            [require('redis-cli'), '-p', str(self.port), '--scan', '--pattern', pattern],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return sorted(listed.stdout.split())

    def stop(self) -> None:
        stop_process(self.process)
