"""Shared fixtures: services on a temp folder, an API client, known audio."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user import User
from nicegui.testing.user_simulation import user_simulation

from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import Services, build_services
from services.models import Recording

from .audio_samples import live_webm, speech_wav, split


@pytest.fixture(scope='session')
def speech_5s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp('audio') / 'speech-5s.wav', 5.0)


@pytest.fixture(scope='session')
def webm_5s(speech_5s: Path) -> bytes:
    return live_webm(speech_5s, speech_5s.with_suffix('.webm'))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / 'data', secret='test-secret', max_chunk_bytes=64 * 1024)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def api(services: Services) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.include_router(create_router(services))
    install_error_handler(app)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client


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
) -> AsyncIterator[User]:
    """NiceGUI's simulated user, running the real main.py on a temp data folder."""
    monkeypatch.setenv('VR_DATA_DIR', str(tmp_path / 'data'))
    monkeypatch.setenv('VR_SECRET', 'test-secret')
    async with user_simulation(main_file=get_path_to_main_file(request)) as simulated:
        yield simulated
    errors = [r for r in caplog.get_records('call') if r.levelname == 'ERROR']
    assert not errors, f'unexpected ERROR logs: {[r.getMessage() for r in errors]}'


@pytest.fixture
def page_services(tmp_path: Path, user: User) -> Iterator[Services]:
    """Services on the same database and folder as the simulated app, to seed and inspect data."""
    built = build_services(Settings(_env_file=None, data_dir=tmp_path / 'data', secret='test-secret'))
    yield built
    built.close()
