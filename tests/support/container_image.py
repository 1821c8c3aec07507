"""The Dockerfile built with podman and its image started with buildah, as `docker build` and `docker run` would.

No Docker engine runs here and `podman run` fails (no cgroups), but `buildah run --isolation chroot` runs the
image's command as its USER with its environment and working folder, sharing the host's loopback. Official base
images cannot be pulled here either, so the Dockerfile's BASE_IMAGE is given a stand-in: Debian bookworm's
Python 3.11 with pip, made from Debian packages with mmdebstrap.
"""

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import httpx

from tests.support.app_server import ROOT
from tests.support.audio_samples import require

IMAGE_NAME = 'localhost/voice-recorder'
IMAGE = f'{IMAGE_NAME}:image-test'
# The files the image's dependency layer is built from (see build_image).
DEPENDENCY_INPUTS = ('Dockerfile', 'requirements.lock', 'pyproject.toml')
STAND_IN_BASE = 'localhost/pybase:bookworm'
# What python:3.11-slim has that matters here: Python with pip, CA certificates, and useradd (passwd).
BASE_PACKAGES = 'python3,python3-pip,python3-venv,python-is-python3,ca-certificates,passwd'
# Package traffic on these machines goes through their own CA bundle and pip configuration.
HOST_CONFIG = [Path('/etc/ssl/certs'), Path('/etc/pip.conf')]


def run(*command: str, timeout: float = 900) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f'{" ".join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}'
        )
    return done.stdout


def image_exists(name: str) -> bool:
    return subprocess.run([require('podman'), 'image', 'exists', name], check=False).returncode == 0


def build_stand_in_base(*, rebuild: bool = False) -> str:
    """A python:3.11-slim look-alike from Debian packages (~30 s), kept in podman's store for the next run."""
    if rebuild or not image_exists(STAND_IN_BASE):
        with tempfile.TemporaryDirectory(prefix='vr-base-') as folder:
            tarball = str(Path(folder) / 'base.tar')
            hook = 'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED'  # pip installs system-wide, as in the official one
            run(require('mmdebstrap'), '--quiet', '--variant=apt', f'--include={BASE_PACKAGES}',
                f'--customize-hook={hook}', 'bookworm', tarball)  # fmt: skip
            run(require('podman'), 'import', '--quiet', tarball, STAND_IN_BASE)
    return STAND_IN_BASE


def build_image(base: str, *, no_cache: bool = False) -> tuple[str, bool]:
    """Builds the image; returns it and whether every layer was built afresh.

    A layer from podman's cache proves nothing about a fresh machine (a dependency step that fails with a new
    base or pip can sit in the cache from a run that passed), so the image is built without the cache whenever
    the inputs of its dependency step have not yet been built that way on this machine: a tag named after their
    fingerprint records that they were.
    """
    verified = f'{IMAGE_NAME}:deps-{dependency_fingerprint(base)}'
    fresh = no_cache or not image_exists(verified)
    mounts = [f'--volume={path}:{path}:ro' for path in HOST_CONFIG if path.exists()]
    options = ['--format=docker', '--isolation=chroot', '--network=host', *mounts, *(['--no-cache'] * fresh)]
    run(require('podman'), 'build', '--quiet', *options, f'--build-arg=BASE_IMAGE={base}', f'--tag={IMAGE}', str(ROOT))
    if fresh:
        for stale in run(require('podman'), 'images', '--format={{.Repository}}:{{.Tag}}', IMAGE_NAME).split():
            if ':deps-' in stale:
                run(require('podman'), 'untag', stale, stale)  # that name only, not the image's others
        run(require('podman'), 'tag', IMAGE, verified)
    return IMAGE, fresh


def dependency_fingerprint(base: str) -> str:
    """What the dependency step's outcome rests on: the Dockerfile, the lock, the project file and the base."""
    digest = hashlib.sha256(run(require('podman'), 'image', 'inspect', '--format={{.Id}}', base).encode())
    for name in DEPENDENCY_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def image_config(image: str) -> dict:
    (inspected,) = json.loads(run(require('podman'), 'image', 'inspect', image))
    return dict(inspected)


class Container:
    """One working container of the image; its /data is a host folder, so it outlives restarts as a volume does."""

    def __init__(self, image: str, volume: Path, port: int, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.config = image_config(image)
        self.volume, self.port, self.log_path = volume, port, log_path
        self.env = {'VR_PORT': str(port), 'VR_HOST': '127.0.0.1', **(env or {})}  # loopback only
        self.id = run(require('buildah'), 'from', '--pull-never', image).strip()
        # buildah 1.28 mounts the image's own VOLUME over a bind mount on the same path; without the declaration in
        # this working container (the image keeps it) the host folder is what /data is, as with `docker run -v`.
        try:
            run(require('buildah'), 'config', '--volume', '/data-', self.id)
        except RuntimeError:
            run(require('buildah'), 'rm', self.id)
            raise
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def _run_command(self, *command: str) -> list[str]:
        env = [f'--env={name}={value}' for name, value in self.env.items()]
        isolation = ['--isolation=chroot', '--network=host', f'--volume={self.volume}:/data']
        return [require('buildah'), 'run', *isolation, *env, self.id, *command]

    def user_id(self) -> int:
        return int(run(*self._run_command('id', '-u')).strip())

    def start(self, timeout: float = 120) -> float:
        """Runs the image's CMD; returns the seconds until /api/healthz answered 200."""
        started = time.monotonic()
        with self.log_path.open('ab') as log:
            self.process = subprocess.Popen(
                self._run_command(*self.config['Config']['Cmd']),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # buildah and the app below it: one process group to stop
            )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f'the container exited with {self.process.returncode}:\n{self.log()}')
            try:
                if httpx.get(f'{self.url}/api/healthz', timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f'the container was not healthy after {timeout} s:\n{self.log()}')

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """The image's own HEALTHCHECK command, run inside the container as a Docker engine would."""
        kind, *command = self.config['Healthcheck']['Test']
        assert kind == 'CMD', kind
        return subprocess.run(self._run_command(*command), capture_output=True, text=True, timeout=30, check=False)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the image's command, as `docker stop` sends it to PID 1; SIGKILL to whatever is left after."""
        if not self.process or self.process.poll() is not None:
            return
        with suppress(RuntimeError, ProcessLookupError):
            os.kill(self._command_pid(), signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _command_pid(self) -> int:
        """The CMD's process, below buildah's own (buildah run, its chroot runtime, the exec helper)."""
        assert self.process
        command = self.config['Config']['Cmd']
        for pid in sorted(descendants(self.process.pid)):
            argv = Path(f'/proc/{pid}/cmdline').read_bytes().decode().split('\0')[:-1]
            if argv and Path(argv[0]).name.startswith(command[0]) and argv[1:] == command[1:]:
                return pid
        raise RuntimeError(f'no process runs {command} in the container')

    def remove(self) -> None:
        self.stop()
        run(require('buildah'), 'rm', self.id)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')[-5000:] if self.log_path.exists() else ''


def descendants(root: int) -> set[int]:
    """Every process below `root`, from the parent ids in /proc (a Go program's children hang off any thread)."""
    parents: dict[int, int] = {}
    for stat in Path('/proc').glob('[0-9]*/stat'):
        with suppress(OSError):
            fields = stat.read_text().rsplit(')', 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
