"""The storage contract on the local folder and on S3, and how S3 faults reach operators and clients."""

import io
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from botocore.exceptions import ClientError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api import create_router, install_error_handler
from services.config import Settings
from services.container import build_services
from services.errors import NotFound, ServiceUnavailable
from services.ordered_fetch import copy_in_order
from services.storage import Storage
from services.storage_s3 import S3Storage
from services.storage_spool import SpooledStorage

from .app_server import free_port
from .conftest import record, s3_of, stored_keys
from .s3_server import REGION, S3Server

S3_ONLY = pytest.mark.parametrize('storage_kind', ['s3'], indirect=True)
BARE_S3 = pytest.mark.parametrize('storage', ['s3'], indirect=True)


def read_all(storage: Storage, key: str) -> bytes:
    buffer = io.BytesIO()
    storage.copy_to(key, buffer)
    return buffer.getvalue()


def test_objects_round_trip_with_ranges_sizes_and_prefix_deletes(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000  # ~1 MB: several read blocks
    storage.put_bytes('recordings/a/chunks/0', data)
    source = tmp_path / 'audio.webm'
    source.write_bytes(data[::-1])
    storage.put_file('recordings/a/audio.webm', source)
    storage.put_bytes('recordings/b/chunks/0', b'keep me')
    assert read_all(storage, 'recordings/a/chunks/0') == data
    assert read_all(storage, 'recordings/a/audio.webm') == data[::-1]
    assert storage.size('recordings/a/chunks/0') == len(data)
    assert b''.join(storage.iter_range('recordings/a/chunks/0', 1000, 400_000)) == data[1000:400_001]
    assert storage.exists('recordings/a/chunks/0')
    assert not storage.exists('recordings/a/chunks/1')
    with pytest.raises(NotFound):
        storage.size('recordings/a/chunks/1')
    with pytest.raises(NotFound):
        read_all(storage, 'recordings/a/chunks/1')
    assert storage.delete_prefix('recordings/a/') == 2
    assert stored_keys(storage, 'recordings/') == ['recordings/b/chunks/0']
    storage.check()


@pytest.mark.parametrize('workers', [1, 8])
def test_chunks_are_joined_in_order_with_bounded_read_ahead(storage: Storage, workers: int) -> None:
    pieces = [uuid.uuid4().bytes * (1 + seq % 37) for seq in range(120)]
    keys = [f'recordings/r/chunks/{seq}' for seq in range(len(pieces))]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(storage.put_bytes, keys, pieces))
    started = 0
    lock = threading.Lock()
    copy_to = storage.copy_to

    def counting_copy_to(key: str, target: Any) -> int:
        nonlocal started
        with lock:
            started += 1
        return copy_to(key, target)

    class Target(io.BytesIO):
        ahead: list[int] = []

        def write(self, data: Any) -> int:
            self.ahead.append(started - len(self.ahead))  # reads begun but not yet written, this write included
            return super().write(data)

    target = Target()
    storage.copy_to = counting_copy_to  # type: ignore[method-assign]
    assert copy_in_order(storage, keys, target, workers=workers) == sum(map(len, pieces))
    assert target.getvalue() == b''.join(pieces)
    if workers > 1:
        assert max(Target.ahead) <= 2 * workers


@pytest.mark.parametrize('storage', ['s3-spooled'], indirect=True)
def test_the_spool_serves_chunks_this_instance_took_and_falls_back_to_s3(storage: Storage, tmp_path: Path) -> None:
    assert isinstance(storage, SpooledStorage)
    for seq in range(3):
        storage.put_bytes(f'recordings/r/chunks/{seq}', f'chunk {seq}'.encode())
    s3_of(storage).delete_prefix('recordings/r/chunks/1')  # only the spool still has chunk 1 ...
    (storage.folder / 'recordings/r/chunks/2').unlink()  # ... and only S3 chunk 2
    keys = [f'recordings/r/chunks/{seq}' for seq in range(3)]
    assert read_all(storage, keys[1]) == b'chunk 1'
    assert read_all(storage, keys[2]) == b'chunk 2'
    assert storage.delete_prefix('recordings/r/') == 2
    assert not (storage.folder / 'recordings/r').exists()
    storage.put_bytes('recordings/s/chunks/0', b'left behind by a crash')
    restarted = SpooledStorage(s3_of(storage), storage.folder)
    assert not (restarted.folder / 'recordings').exists(), 'a restart starts with an empty spool'
    assert read_all(restarted, 'recordings/s/chunks/0') == b'left behind by a crash'


@pytest.mark.parametrize('storage', ['s3-spooled'], indirect=True)
def test_the_spool_forgets_recordings_abandoned_for_a_day(storage: Storage) -> None:
    assert isinstance(storage, SpooledStorage)
    storage.put_bytes('recordings/old/chunks/0', b'x')
    storage.put_bytes('recordings/new/chunks/0', b'y')
    a_day_ago = time.time() - 24 * 3600 - 60
    os.utime(storage.folder / 'recordings/old/chunks', (a_day_ago, a_day_ago))
    storage.sweep()
    assert sorted(p.name for p in (storage.folder / 'recordings').iterdir()) == ['new']
    assert read_all(storage, 'recordings/old/chunks/0') == b'x'  # still in S3


def test_a_missing_chunk_fails_the_join_instead_of_leaving_a_hole(storage: Storage) -> None:
    for seq in (0, 1, 3):
        storage.put_bytes(f'recordings/r/chunks/{seq}', b'x')
    keys = [f'recordings/r/chunks/{seq}' for seq in range(4)]
    with pytest.raises(NotFound):
        copy_in_order(storage, keys, io.BytesIO(), workers=4)


@BARE_S3
def test_delete_prefix_pages_through_listings_and_batches_deletes(storage: Storage) -> None:
    assert isinstance(storage, S3Storage)
    keys = [f'recordings/long/chunks/{seq}' for seq in range(1_050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: storage.put_bytes(key, b'.'), keys))
    storage.put_bytes('recordings/longer/chunks/0', b'a sibling whose name starts the same')
    calls: dict[str, int] = {'ListObjectsV2': 0, 'DeleteObjects': 0}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    storage.client.meta.events.register('before-call.s3', count)
    assert storage.delete_prefix('recordings/long/') == 1_050
    assert calls['ListObjectsV2'] >= 2 and calls['DeleteObjects'] >= 2  # one page and one batch hold 1,000 keys
    assert stored_keys(storage, 'recordings/') == ['recordings/longer/chunks/0']


@S3_ONLY
def test_s3_audio_urls_are_presigned_gets_with_type_disposition_and_expiry(
    storage_settings: dict[str, Any], tmp_path: Path, webm_5s: bytes
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / 'data', audio_url_expiry_s=900, **storage_settings)
    services = build_services(settings)
    try:
        ready = record(services, services.users.onboard(name='Ada')[0].id, webm_5s)
        before = time.time()
        play, download = services.links.url(ready), services.links.url(ready, download=True)
    finally:
        services.close()
    url = urlparse(play)
    query = parse_qs(url.query)
    assert f'{url.scheme}://{url.netloc}' == settings.s3_endpoint_url
    assert url.path == f'/{settings.s3_bucket}/recordings/{ready.id}/audio.webm'
    assert query['X-Amz-Algorithm'] == ['AWS4-HMAC-SHA256']
    assert query['X-Amz-Credential'][0].endswith(f'/{REGION}/s3/aws4_request')
    assert query['X-Amz-Expires'] == ['900']
    signed_at = time.mktime(time.strptime(query['X-Amz-Date'][0], '%Y%m%dT%H%M%SZ')) - time.timezone
    assert signed_at == pytest.approx(before, abs=5)
    assert query['response-content-type'] == ['audio/webm']
    assert 'response-content-disposition' not in query
    download_query = parse_qs(urlparse(download).query)
    assert download_query['response-content-disposition'] == [f'attachment; filename="recording-{ready.id}.webm"']
    response = httpx.get(play, headers={'Range': 'bytes=0-99'})
    assert (response.status_code, len(response.content)) == (206, 100)


@S3_ONLY
def test_presigned_urls_name_the_endpoint_browsers_reach(storage_settings: dict[str, Any]) -> None:
    """Inside compose the app reaches http://minio:9000, a browser only the published address."""
    storage = S3Storage(
        bucket=storage_settings['s3_bucket'],
        region=REGION,
        endpoint_url=storage_settings['s3_endpoint_url'],
        public_endpoint_url='https://media.example.org',
        path_style=True,
    )
    url = storage.direct_url('recordings/x/audio.webm', content_type='audio/webm')
    storage.close()
    assert url.startswith(f'https://media.example.org/{storage_settings["s3_bucket"]}/recordings/x/audio.webm?')


def s3_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / 'data',
        secret='test-secret',
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
        token = api.post('/api/onboard', json={'name': 'Ada'}).json()['token']
        auth = {'Authorization': f'Bearer {token}'}
        recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
        chunk = api.put(f'/api/recordings/{recording_id}/chunks/0', content=b'audio', headers=auth)
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


@BARE_S3
def test_denied_credentials_are_named_not_dumped(
    storage: Storage, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto accepts any key, so the 403 a wrong key gets from real S3 is injected."""
    assert isinstance(storage, S3Storage)

    def denied(**_: Any) -> None:
        raise ClientError({'Error': {'Code': '403', 'Message': 'Forbidden'}}, 'HeadBucket')

    monkeypatch.setattr(storage.client, 'head_bucket', denied)
    caplog.clear()
    storage.ensure_bucket(create=True)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and 'was denied: check the AWS credentials' in errors[0]
    with pytest.raises(ServiceUnavailable, match='was denied'):
        storage.check()
