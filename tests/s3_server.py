"""moto's S3 in server mode: a process of its own on a free loopback port, reached over HTTP like production S3.

moto checks neither signatures nor presigned-URL expiry, so tests read a URL's parameters for those.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .app_server import free_port, stop_process

# Fixed test credentials: boto3 finds them in the environment like any deployment would (the AWS chain).
CREDENTIALS = {'AWS_ACCESS_KEY_ID': 'testing', 'AWS_SECRET_ACCESS_KEY': 'testing-secret'}
REGION = 'us-east-1'


class S3Server:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def start(self, timeout: float = 30) -> 'S3Server':
        command = [sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p', str(self.port)]
        with self.log_path.open('ab') as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'moto_server exited with {self.process.returncode}:\n{self.log()}')
            try:
                if httpx.get(f'{self.url}/moto-api/', timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f'moto_server did not answer within {timeout} s:\n{self.log()}')

    def stop(self) -> None:
        stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-3000:] if self.log_path.exists() else ''
