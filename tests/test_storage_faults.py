"""How S3 faults reach operators (one clear line at start-up, a failing healthz) and clients (a plain 503)."""

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import create_router, install_error_handler
from services.container import build_services
from services.core.config import Settings
from services.core.errors import ServiceUnavailable
from services.storage.s3 import S3Storage
from tests.conftest import UserFactory
from tests.support.app_server import free_port
from tests.support.audio_samples import WEBM_MAGIC
from tests.support.s3_server import REGION, S3Server


def s3_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / 'data',
        secret='test-secret-of-at-least-32-characters',
        storage='s3',
        s3_region=REGION,
        s3_path_style=True,
        **overrides,
    )


def api_client(settings: Settings) -> tuple[Any, TestClient]:
    services = build_services(settings)
    app = FastAPI()
    app.include_router(create_router(services))
    install_error_handler(app)
    return services, TestClient(app)


def test_missing_bucket_is_one_error_line_a_failing_healthz_and_plain_503s(
    s3_server: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = f'vr-missing-{uuid.uuid4().hex[:12]}'
    settings = s3_settings(tmp_path, s3_bucket=bucket, s3_endpoint_url=s3_server.url, s3_create_bucket=False)
    with caplog.at_level(logging.INFO):
        services, api = api_client(settings)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"S3 storage is not usable: S3 bucket '{bucket}' does not exist (set VR_S3_CREATE_BUCKET=true to create it at "
        'start-up); /api/healthz reports 503 until it is fixed'
    ]
    caplog.clear()
    with api:
        health = api.get('/api/healthz')
        assert health.status_code == 503
        assert health.json()['database'] == 'ok'
        assert health.json()['storage'].startswith(f"error: S3 bucket '{bucket}' does not exist")
        _, auth = UserFactory(services).with_auth('Ada')
        recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
        chunk = api.put(f'/api/recordings/{recording_id}/chunks/0', content=WEBM_MAGIC + b'audio', headers=auth)
    services.close()
    assert chunk.status_code == 503
    assert chunk.json() == {'error': 'audio storage is unavailable, please try again shortly'}
    assert not any(r.exc_info for r in caplog.records), 'a stack trace was logged'
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_unreachable_endpoint_fails_healthz_with_a_plain_reason(
    s3_server: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f'http://127.0.0.1:{free_port()}'
    settings = s3_settings(tmp_path, s3_bucket='vr-anything', s3_endpoint_url=closed, s3_create_bucket=True)
    services, api = api_client(settings)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and f'the S3 endpoint {closed} cannot be reached' in errors[0]
    with api:
        health = api.get('/api/healthz')
    services.close()
    assert health.status_code == 503
    assert health.json()['storage'] == f'error: the S3 endpoint {closed} cannot be reached'


def test_missing_credentials_are_named_at_start_up(
    s3_server: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ('AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'):
        monkeypatch.delenv(name)
    monkeypatch.setenv('AWS_SHARED_CREDENTIALS_FILE', str(tmp_path / 'none'))
    monkeypatch.setenv('AWS_CONFIG_FILE', str(tmp_path / 'none'))
    storage = S3Storage(bucket='vr-anything', region=REGION, endpoint_url=s3_server.url, path_style=True)
    storage.ensure_bucket(create=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and 'no AWS credentials found' in errors[0]
    with pytest.raises(ServiceUnavailable, match='no AWS credentials found'):
        storage.check()
    storage.close()


@pytest.mark.parametrize('wrong', ['secret key', 'access key'])
def test_refused_credentials_are_named_not_dumped(
    s3_server: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    """The server checks every signature: a wrong secret or an unknown key is refused, and named so."""
    name = 'AWS_SECRET_ACCESS_KEY' if wrong == 'secret key' else 'AWS_ACCESS_KEY_ID'
    monkeypatch.setenv(name, 'not-the-right-one')
    storage = S3Storage(bucket='vr-anything', region=REGION, endpoint_url=s3_server.url, path_style=True)
    storage.ensure_bucket(create=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [
        "S3 storage is not usable: access to S3 bucket 'vr-anything' was denied: check the AWS credentials and the "
        'bucket policy; /api/healthz reports 503 until it is fixed'
    ]
    assert not any(r.exc_info for r in caplog.records), 'a stack trace was logged'
    with pytest.raises(ServiceUnavailable, match='was denied'):
        storage.check()
    storage.close()
