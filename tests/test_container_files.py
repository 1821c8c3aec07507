"""What can be checked by reading the container files and the lock; `make image-test` builds and starts the image."""

import re
import tomllib
from contextlib import suppress
from dataclasses import dataclass
from importlib import metadata

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from services.core.config import Settings
from tests.support.app_server import ROOT

LOCK = ROOT / 'requirements.lock'


def compose_app_environment() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / 'compose.yaml').read_text())
    return {name: str(value) for name, value in compose['services']['app']['environment'].items()}


def with_defaults(value: str) -> str:
    """What compose substitutes for `${NAME:-default}` when NAME is unset (and a stand-in for required ones)."""
    value = re.sub(r'\$\{[A-Z_]+:-([^}]*)\}', r'\1', value)
    return re.sub(r'\$\{[A-Z_]+:\?[^}]*\}', 'x' * 32, value)


def test_compose_configures_the_app_with_real_settings_only() -> None:
    environment = {name: with_defaults(value) for name, value in compose_app_environment().items()}
    unknown = {name for name in environment if name.startswith('VR_')} - {
        f'VR_{field.upper()}' for field in Settings.model_fields
    }
    assert unknown == set(), f'compose.yaml sets settings the app does not have: {unknown}'
    settings = Settings(
        _env_file=None, **{name[3:].lower(): value for name, value in environment.items() if name.startswith('VR_')}
    )
    assert (settings.storage, settings.s3_path_style) == ('s3', True)
    assert settings.resolved_database_url.startswith('postgresql+psycopg://')
    assert {'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'} <= environment.keys()


def test_compose_creates_the_bucket_the_app_uses() -> None:
    compose = yaml.safe_load((ROOT / 'compose.yaml').read_text())
    bucket = compose_app_environment()['VR_S3_BUCKET']
    assert f'mc mb --ignore-existing store/{bucket}' in ' '.join(compose['services']['bucket']['command'])
    assert compose['services']['app']['depends_on']['bucket'] == {'condition': 'service_completed_successfully'}
    assert set(compose['volumes']) == {'app-data', 'postgres-data', 'minio-data'}


def test_the_image_copies_every_folder_the_app_runs_from() -> None:
    dockerfile = (ROOT / 'Dockerfile').read_text()
    copied = {name for line in re.findall(r'^COPY (.+) \S+$', dockerfile, flags=re.MULTILINE) for name in line.split()}
    needed = {'pyproject.toml', 'requirements.lock', 'main.py', 'web.py', 'commands.py', 'api', 'pages', 'services'}
    needed |= {'assets', 'migrations'}
    assert needed <= copied
    # --no-deps: the lock is complete, and an older pip re-resolving it refuses extras (`uvicorn[standard]`) as
    # unpinned; `pip check` then proves nothing is missing
    install = (
        'pip install --no-cache-dir --no-deps --require-hashes -r requirements.lock \\\n' + '    && python -m pip check'
    )
    assert dockerfile.index('requirements.lock ./') < dockerfile.index(install) < dockerfile.index('COPY main.py')
    assert re.search(r'^ARG BASE_IMAGE=python:3\.11-slim$', dockerfile, flags=re.MULTILINE), 'official image by default'
    assert re.search(r'^USER app$', dockerfile, flags=re.MULTILINE)
    assert 'HEALTHCHECK' in dockerfile and '/api/healthz' in dockerfile
    assert 'NICEGUI_STORAGE_PATH=/data/' in dockerfile, 'the app user cannot write to /app, and /data is kept'


@dataclass
class Pin:
    requirement: Requirement
    hashes: list[str]
    via: list[str]  # what needs it, as the lock notes it: packages, or `voice-recorder (pyproject.toml)`

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str:
        (pinned,) = [spec.version for spec in self.requirement.specifier if spec.operator == '==']
        return pinned

    @property
    def applies_here(self) -> bool:
        return not self.requirement.marker or self.requirement.marker.evaluate()


def locked() -> list[Pin]:
    """requirements.lock's entries: a pin, its hashes, then what needs it; a name may have one pin per environment."""
    pins: list[Pin] = []
    for line in LOCK.read_text().splitlines():
        text = line.strip().removesuffix('\\').strip()
        if not text or (line.startswith('#') and not pins):
            continue
        if not line.startswith(' '):
            pins.append(Pin(Requirement(text), [], []))
        elif text.startswith('--hash=sha256:'):
            pins[-1].hashes.append(text.removeprefix('--hash=sha256:'))
        elif needer := text.lstrip('#').strip().removeprefix('via').strip():
            pins[-1].via.append(needer)
    return pins


def pyproject_dependencies() -> list[Requirement]:
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    return [Requirement(line) for line in project['dependencies']]


def needed_here(requirements: list[Requirement]) -> set[str]:
    """Every distribution these requirements pull in on this interpreter and platform, extras included, as the
    installed distributions' metadata says."""
    seen: set[tuple[str, str]] = set()
    queue = [(requirement, '') for requirement in requirements]  # with the extra its marker is evaluated for
    while queue:
        requirement, extra = queue.pop()
        if requirement.marker and not requirement.marker.evaluate({'extra': extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in ('', *requirement.extras):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            with suppress(metadata.PackageNotFoundError):  # not installed: shows as missing from the lock or not
                queue += [(Requirement(line), wanted) for line in metadata.requires(name) or []]
    return {name for name, _ in seen}


def test_the_lock_pins_every_dependency_of_pyproject_with_hashes() -> None:
    pins = locked()
    for requirement in pyproject_dependencies():
        versions = [pin.version for pin in pins if pin.name == canonicalize_name(requirement.name)]
        assert versions, f'{requirement.name} is in pyproject.toml but not in requirements.lock: run make lock'
        for version in versions:
            assert requirement.specifier.contains(version, prereleases=True), f'{version} breaks {requirement}'
    assert all(re.fullmatch('[0-9a-f]{64}', digest) for pin in pins for digest in pin.hashes)
    assert [pin.name for pin in pins if not pin.hashes] == [], 'pip install --require-hashes needs every hash'


def test_the_lock_holds_nothing_pyproject_does_not_need() -> None:
    pins = locked()
    direct = {canonicalize_name(requirement.name) for requirement in pyproject_dependencies()}
    made_from = {pin.name for pin in pins if 'voice-recorder (pyproject.toml)' in pin.via}
    assert made_from == direct, 'the lock was made from other dependencies than pyproject.toml has: run make lock'
    here, needed = {pin.name for pin in pins if pin.applies_here}, needed_here(pyproject_dependencies())
    assert (sorted(needed - here), sorted(here - needed)) == ([], []), '(not locked, not needed): run make lock'


def test_what_is_installed_is_what_is_locked() -> None:
    """The tests run against the pinned versions (`make` installs the lock), so the image runs what was tested."""
    wrong = {}
    for pin in locked():
        if not pin.applies_here:
            continue
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = 'not installed'
        if installed != pin.version:
            wrong[pin.name] = f'{installed}, locked {pin.version}'
    assert wrong == {}, 'run make: it installs requirements.lock'


def test_the_deploy_guide_shows_the_tested_load_balancer_config_and_no_copy_of_it() -> None:
    config = (ROOT / 'docs' / 'haproxy.cfg').read_text()
    tunnel = re.search(r'^\s*timeout tunnel (\d+)([smh])\b', config, flags=re.MULTILINE)
    assert tunnel, 'websockets need a tunnel timeout'
    seconds = int(tunnel[1]) * {'s': 1, 'm': 60, 'h': 3600}[tunnel[2]]
    assert seconds > Settings(_env_file=None).recorder_reconnect_timeout_s
    assert 'uri /api/healthz' in config and 'option redispatch' in config and 'cookie ' in config
    guide = (ROOT / 'docs' / 'deploy.md').read_text()
    assert '(haproxy.cfg)' in guide and 'backend ' not in guide and 'timeout tunnel' not in guide
