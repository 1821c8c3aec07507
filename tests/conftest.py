"""Shared fixtures: services on both deployments, an API client, known audio.

`settings` (and so `services` and `api`) runs each test on the two deployments people run: the embedded one
(SQLite + local folder) and the scaled-out one (PostgreSQL + S3), each with a fresh database and a fresh bucket on
real servers the session starts itself. The database and the storage are independent layers, so the two mixed
pairs add time and no coverage. A test that is about one backend narrows it with
`@pytest.mark.parametrize('storage_kind', ['s3'], indirect=True)`; a test that names only one of the two gets
every value of the other.
"""

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user import User as SimulatedUser
from nicegui.testing.user_simulation import user_simulation

from services.container import Services, build_services, build_storage
from services.core.config import Settings
from services.core.database import Database
from services.core.models import Recording, User
from services.core.schema import upgrade
from services.storage.local import LocalStorage
from services.storage.protocol import Storage
from services.storage.s3 import S3Storage
from services.storage.spool import SpooledStorage
from services.transcripts.engine import Transcriber
from services.transcripts.models import load_model, model_folder, model_spec
from services.transcripts.worker import TranscriptWorker
from tests.support.audio_samples import live_webm, speech_wav, split
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.s3_server import CREDENTIALS, REGION, S3Server
from web import install_api


@pytest.fixture(scope='session')
def speech_5s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp('audio') / 'speech-5s.wav', 5.0)


@pytest.fixture(scope='session')
def webm_5s(speech_5s: Path) -> bytes:
    return live_webm(speech_5s, speech_5s.with_suffix('.webm'))


@pytest.fixture(scope='session')
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    """Whisper tiny.en, for what does not depend on the model (the worker, windows, search, files, imports): half
    the CPU of the default, base, which the quality guards and the embedded workers' test use. Once per session
    (and xdist worker), for every module."""
    return Transcriber(load_model(model_folder(model_spec('tiny.en'), tmp_path_factory.mktemp('models'))))


@pytest.fixture(scope='session')
def base_transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    """The default model, Whisper base, joined into a data dir of the session's own."""
    return Transcriber(load_model(model_folder(model_spec('base'), tmp_path_factory.mktemp('models'))))


def in_process_worker(services: Services, transcriber: Transcriber, timeout_s: float = 120) -> TranscriptWorker:
    """The transcript worker's loop in the test's process, on its services, with a session's model."""
    assert services.transcripts.queue is not None
    return TranscriptWorker(
        queue=services.transcripts.queue,
        storage=services.storage,
        transcriber=lambda: transcriber,
        temp_dir=services.settings.data_dir / 'tmp',
        timeout_s=timeout_s,
    )


@pytest.fixture(scope='session')
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as environment:
        for name, value in CREDENTIALS.items():
            environment.setenv(name, value)
        environment.setenv('AWS_EC2_METADATA_DISABLED', 'true')  # never look for credentials off this machine
        for name in ('AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3'):
            environment.delenv(name, raising=False)
        server = S3Server(tmp_path_factory.mktemp('s3') / 'seaweedfs.log').start()
        yield server
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own: NiceGUI's user storage and the rate limits start empty."""
    server = RedisServer(tmp_path / 'redis').start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


DEPLOYMENTS = [('sqlite', 'local'), ('postgresql', 's3')]
BACKEND_KINDS = {'database_kind': ['sqlite', 'postgresql'], 'storage_kind': ['local', 's3']}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `database_kind` and `storage_kind` where a test's own marks leave them open: both open, the two
    deployments; one open, every value of it."""
    narrowed: set[str] = set()
    for mark in metafunc.definition.iter_markers('parametrize'):
        names = mark.args[0]
        narrowed.update(n.strip() for n in (names.split(',') if isinstance(names, str) else names))
    open_kinds = [name for name in BACKEND_KINDS if name in metafunc.fixturenames and name not in narrowed]
    if len(open_kinds) == 2:
        metafunc.parametrize(('database_kind', 'storage_kind'), DEPLOYMENTS, indirect=True)
    elif open_kinds:
        metafunc.parametrize(open_kinds[0], BACKEND_KINDS[open_kinds[0]], indirect=True)


@pytest.fixture
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database per test; the app's own migrations build its schema."""
    if database_kind == 'sqlite':
        yield f'sqlite:///{tmp_path / "data" / "voice-recorder.db"}'
        return
    server: PostgresServer = request.getfixturevalue('postgres')
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture(scope='session')
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file the app's migrations built, once per session (and xdist worker)."""
    path = tmp_path_factory.mktemp('migrated') / 'voice-recorder.db'
    database = Database(f'sqlite:///{path}')
    upgrade(database.engine)
    database.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope='session')
def migrated_postgres(postgres: PostgresServer) -> str:
    """One PostgreSQL database the app's migrations built, the template each test's database is copied from."""
    name = postgres.create_database()
    database = Database(postgres.url(name))
    upgrade(database.engine)
    database.dispose()  # a template must have no connections
    return name


@pytest.fixture
def migrated_database_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database per test, copied from one the migrations built: the same schema without running them again
    (tests of the migrations themselves, or of instances migrating together, take `database_url`)."""
    if database_kind == 'sqlite':
        copy = tmp_path / 'data' / 'voice-recorder.db'
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue('migrated_sqlite'), copy)
        yield f'sqlite:///{copy}'
        return
    server: PostgresServer = request.getfixturevalue('postgres')
    name = server.create_database(template=request.getfixturevalue('migrated_postgres'))
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture
def storage_settings(storage_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh bucket per test, created by the app at start-up as VR_S3_CREATE_BUCKET allows."""
    if storage_kind == 'local':
        return {}
    return fresh_bucket(request.getfixturevalue('s3_server'))


def fresh_bucket(server: S3Server) -> dict[str, Any]:
    """Settings for a bucket of its own on the test S3 server, created by the app at start-up."""
    return {
        'storage': 's3',
        's3_bucket': f'vr-test-{uuid.uuid4().hex[:16]}',
        's3_endpoint_url': server.url,
        's3_region': REGION,
        's3_path_style': True,
        's3_create_bucket': True,
    }


@pytest.fixture
def settings(tmp_path: Path, migrated_database_url: str, storage_settings: dict[str, Any]) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / 'data',
        secret='test-secret-of-at-least-32-characters',
        max_chunk_bytes=64 * 1024,
        database_url=migrated_database_url,
        **storage_settings,
    )


@pytest.fixture(params=['local', 's3', 's3-spooled'])
def storage(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    """The storage alone, for its contract: the local folder, bare S3, and S3 behind the local chunk spool."""
    options: dict[str, Any] = {}
    if request.param != 'local':
        options = {**fresh_bucket(request.getfixturevalue('s3_server')), 's3_spool': request.param == 's3-spooled'}
    built = build_storage(Settings(_env_file=None, data_dir=tmp_path / 'data', **options))
    yield built
    built.close()


def s3_of(storage: Storage) -> S3Storage:
    remote = storage.remote if isinstance(storage, SpooledStorage) else storage
    assert isinstance(remote, S3Storage), f'{type(remote).__name__} is not S3'
    return remote


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as VR_* variables, for an app started as a process of its own.

    Its address, data folder and transcriber are the AppServer's own: two instances must not share one data folder
    (spool, temp files), and a transcriber runs only where a test asks for it.
    """
    values = settings.model_dump(exclude_none=True, exclude={'host', 'port', 'data_dir', 'transcribe'})
    return {f'VR_{name.upper()}': str(value) for name, value in values.items()}


def stored_keys(storage: Storage, prefix: str) -> list[str]:
    """What the storage really holds under `prefix`, read past the app's own bookkeeping."""
    if isinstance(storage, LocalStorage):
        folder = storage.root / prefix
        return sorted(str(path.relative_to(storage.root)) for path in folder.rglob('*') if path.is_file())
    s3 = s3_of(storage)
    pages = s3.client.get_paginator('list_objects_v2').paginate(Bucket=s3.bucket, Prefix=prefix)
    return sorted(item['Key'] for page in pages for item in page.get('Contents', []))


def fetch(api: httpx.Client, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET an audio URL: our own signed /api path through the app, or a presigned S3 URL over real HTTP."""
    if url.startswith(('http://', 'https://')):
        return httpx.get(url, headers=headers, timeout=30)
    return api.get(url, headers=headers)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def api(services: Services) -> Iterator[httpx.Client]:
    """The API as production serves it (main.install_api: its middleware, limits and error rendering)."""
    app = FastAPI()
    install_api(app, services)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client


class UserFactory:
    """People made as onboarding makes them, for a test that just needs someone to own data or call the API."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, name: str = 'Ada') -> User:
        return self.with_auth(name)[0]

    def with_auth(self, name: str = 'Ada') -> tuple[User, dict[str, str]]:
        """The user and the Authorization header that carries its API token."""
        user, token = self.services.users.onboard(name=name)
        return user, {'Authorization': f'Bearer {token}'}


@pytest.fixture
def make_user(services: Services) -> UserFactory:
    """`make_user('Ada')` is a new user of the test's services; `make_user.with_auth('Ada')` adds its API header."""
    return UserFactory(services)


def record(
    services: Services, user_id: uuid.UUID, audio: bytes, *, title: str | None = None, chunk_size: int = 16_500
) -> Recording:
    """A ready recording made through the same calls the browser's chunks go through."""
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm;codecs=opus', title=title)
    for seq, piece in enumerate(split(audio, chunk_size)):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    return services.finalizer.finalize(user_id=user_id, recording_id=recording.id)


@pytest.fixture
async def user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[SimulatedUser]:
    """NiceGUI's simulated user, running the real main.py on a temp data folder."""
    monkeypatch.setenv('VR_DATA_DIR', str(tmp_path / 'data'))
    monkeypatch.setenv('VR_SECRET', 'test-secret-of-at-least-32-characters')
    monkeypatch.setenv('VR_TRANSCRIBE', 'false')  # no worker process beside the simulated user
    async with user_simulation(main_file=get_path_to_main_file(request)) as simulated:
        yield simulated
    errors = [r for r in caplog.get_records('call') if r.levelname == 'ERROR']
    assert not errors, f'unexpected ERROR logs: {[r.getMessage() for r in errors]}'


@pytest.fixture
def page_services(tmp_path: Path, user: SimulatedUser) -> Iterator[Services]:
    """Services on the same database and folder as the simulated app, to seed and inspect data."""
    built = build_services(
        Settings(_env_file=None, data_dir=tmp_path / 'data', secret='test-secret-of-at-least-32-characters')
    )
    yield built
    built.close()
