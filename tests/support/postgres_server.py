"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temp folder, on a free loopback port."""

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.support.app_server import free_port

PG_ROOT = Path('/usr/lib/postgresql')


def postgres_bin() -> Path:
    """The newest installed server binaries; fail loudly, never skip: `make test` installs them."""
    candidates = sorted(PG_ROOT.glob('*/bin/initdb'), key=lambda p: int(p.parent.parent.name))
    if not candidates:
        raise RuntimeError(f'PostgreSQL is not installed (no {PG_ROOT}/*/bin/initdb); run make test to install it')
    return candidates[-1].parent


class PostgresServer:
    """As root, the server runs as the `postgres` user: initdb and postgres refuse to run as root."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix='vr-postgres-'))
        self.data = self.folder / 'data'
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam('postgres')
            except KeyError as error:
                raise RuntimeError('running as root needs the postgres user (Debian package postgresql)') from error
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_user = ['runuser', '-u', 'postgres', '--']

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self.as_user, *command], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f'{command[0]} failed:\n{result.stdout}\n{result.stderr}\n{self.log()}')

    def start(self) -> 'PostgresServer':
        initdb = [str(self.bin / 'initdb'), '-D', str(self.data), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8']
        self._run(*initdb, '--no-sync')
        options = (
            f'-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off '
            '-c synchronous_commit=off -c full_page_writes=off -c max_connections=300'
        )
        log = str(self.folder / 'log')
        self._run(str(self.bin / 'pg_ctl'), '-D', str(self.data), '-l', log, '-o', options, '-w', 'start')
        return self

    def stop(self) -> None:
        if (self.data / 'postmaster.pid').exists():
            self._run(str(self.bin / 'pg_ctl'), '-D', str(self.data), '-m', 'immediate', '-w', 'stop')
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = 'postgres') -> str:
        return f'postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}'

    def create_database(self, template: str | None = None) -> str:
        """A fresh database, so every test starts clean; returns its name."""
        name = f'vr_{uuid.uuid4().hex[:12]}'
        suffix = f' TEMPLATE {template}' if template else ''
        self.execute(f'CREATE DATABASE {name}{suffix}')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')

    def execute(self, sql: str) -> None:
        with psycopg.connect(host='127.0.0.1', port=self.port, user='postgres', autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def log(self) -> str:
        path = self.folder / 'log'
        return path.read_text(errors='replace')[-3000:] if path.exists() else ''
