"""HAProxy (Debian's `haproxy`) on a free loopback port, run with the deploy guide's own `docs/haproxy.cfg`."""

import os
import re
import subprocess
from pathlib import Path

from tests.support.app_server import ROOT, AppServer, free_port, stop_process, wait_until_healthy
from tests.support.audio_samples import require

CONFIG = ROOT / 'docs' / 'haproxy.cfg'
COOKIE = 'vr_lb'


class LoadBalancer:
    """In front of two app instances: `app1` and `app2` are the values its sticky cookie names them by."""

    def __init__(self, apps: tuple[AppServer, AppServer], log_path: Path) -> None:
        self.apps = {'app1': apps[0], 'app2': apps[1]}
        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(('LB_', 'APP'))},
            'LB_BIND': f'127.0.0.1:{self.port}',
            'LB_BIND_OPTIONS': '',
            'LB_COOKIE': COOKIE,
            **{f'{name.upper()}_ADDR': f'127.0.0.1:{app.port}' for name, app in self.apps.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def start(self, timeout: float = 15) -> 'LoadBalancer':
        command = [require('haproxy'), '-f', str(CONFIG), '-db']  # -db: in the foreground, one process to stop
        with self.log_path.open('ab') as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.process, f'{self.url}/api/healthz', 'haproxy', timeout, self.log)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def served_by(self) -> list[str]:
        """The instance each logged request went to, in log order (HAProxy logs a request when it ends)."""
        text = self.log_path.read_text(errors='replace') if self.log_path.exists() else ''
        return re.findall(r' voice_recorder apps/(\w+) ', text)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-5000:] if self.log_path.exists() else ''
