"""Two app instances share one PostgreSQL and one bucket, as containers behind a load balancer would."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from services.core.config import Settings
from services.recordings.service import recording_prefix
from services.storage.s3 import S3Storage
from tests.conftest import settings_env, stored_keys
from tests.support.app_server import AppServer
from tests.support.audio_samples import split

BACKENDS = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('postgresql', 's3')], indirect=True)


@pytest.fixture
def instances(tmp_path: Path, settings: Settings, database_url: str) -> Iterator[tuple[AppServer, AppServer]]:
    """Started together on a new, empty database: both migrate at start-up and one of them does the work."""
    env = {**settings_env(settings), 'VR_DATABASE_URL': database_url}
    servers = (AppServer(tmp_path / 'a' / 'data', env=env), AppServer(tmp_path / 'b' / 'data', env=env))
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(AppServer.start, servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


@BACKENDS
def test_a_recording_made_on_one_instance_is_listed_played_and_deleted_on_the_other(
    instances: tuple[AppServer, AppServer], settings: Settings, webm_5s: bytes
) -> None:
    first, second = (httpx.Client(base_url=server.url, timeout=30) for server in instances)
    onboarded = first.post('/api/onboard', json={'name': 'Ada'}).json()
    user_id, auth = onboarded['user_id'], {'Authorization': f'Bearer {onboarded["token"]}'}
    recording_id = first.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    for seq, piece in enumerate(split(webm_5s, 16_000)):
        assert first.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth).is_success
    made = first.post(f'/api/recordings/{recording_id}/finalize', headers=auth).json()
    assert made['status'] == 'ready'

    listed = second.get(f'/api/records/{user_id}', headers=auth).json()
    assert [item['id'] for item in listed] == [recording_id]
    audio_url = listed[0]['audio_url']
    assert audio_url.startswith(f'{settings.s3_endpoint_url}/{settings.s3_bucket}/recordings/{recording_id}/')
    whole = httpx.get(audio_url)
    assert (whole.status_code, whole.headers['content-type']) == (200, 'audio/webm')
    assert len(whole.content) == made['size_bytes']
    seek = httpx.get(audio_url, headers={'Range': 'bytes=1000-1999'})
    assert (seek.status_code, seek.content) == (206, whole.content[1000:2000])
    assert second.get(f'/api/recordings/{recording_id}/audio', headers=auth).content == whole.content

    assert second.delete(f'/api/recordings/{recording_id}', headers=auth).status_code == 204
    assert first.get(f'/api/recordings/{recording_id}', headers=auth).status_code == 404
    assert first.get(f'/api/records/{user_id}', headers=auth).json() == []
    bucket = S3Storage(bucket=str(settings.s3_bucket), endpoint_url=settings.s3_endpoint_url, path_style=True)
    assert stored_keys(bucket, recording_prefix(uuid.UUID(recording_id))) == []
    bucket.close()

    logs = [server.log() for server in instances]
    assert sum('Running upgrade  -> 0001' in log for log in logs) == 1, 'exactly one instance migrates'
    assert not any(' ERROR ' in log or 'Traceback' in log for log in logs), logs
