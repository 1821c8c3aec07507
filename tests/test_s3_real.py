"""What only a real S3 server can show: it checks signatures, expiry and ranges as AWS does (SeaweedFS here)."""

import calendar
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.container import Services, build_services
from services.core.config import Settings
from services.core.models import Recording
from services.recordings.download_names import content_disposition, download_name
from services.recordings.service import recording_audio_key
from tests.conftest import UserFactory, fresh_bucket, record, s3_of
from tests.support.app_server import ROOT, AppServer
from tests.support.s3_server import S3Server

EXPIRY_S = 3  # short, yet long enough for a loaded machine to fetch the fresh URL in time


@pytest.fixture
def s3_services(tmp_path: Path, s3_server: S3Server) -> Iterator[Services]:
    """Services on SQLite and a fresh bucket, with audio URLs that expire after EXPIRY_S seconds."""
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / 'data',
        secret='test-secret-of-at-least-32-characters',
        audio_url_expiry_s=EXPIRY_S,
        **fresh_bucket(s3_server),
    )
    built = build_services(settings)
    yield built
    built.close()


@pytest.fixture
def make_user(s3_services: Services) -> UserFactory:
    """This module's users live on its own services."""
    return UserFactory(s3_services)


@pytest.fixture
def ready(s3_services: Services, make_user: UserFactory, webm_5s: bytes) -> Recording:
    return record(s3_services, make_user('Ada').id, webm_5s)


def stored_audio(services: Services, recording: Recording) -> bytes:
    buffer = io.BytesIO()
    services.storage.copy_to(recording_audio_key(recording), buffer)
    return buffer.getvalue()


def test_a_presigned_audio_url_stops_working_when_it_expires(s3_services: Services, ready: Recording) -> None:
    url = s3_services.links.url(ready)
    assert httpx.get(url, headers={'Range': 'bytes=0-99'}).status_code == 206
    assert httpx.get(url).status_code == 200
    signed_at = calendar.timegm(time.strptime(parse_qs(urlparse(url).query)['X-Amz-Date'][0], '%Y%m%dT%H%M%SZ'))
    time.sleep(max(0.0, signed_at + EXPIRY_S + 1.5 - time.time()))
    expired = httpx.get(url, headers={'Range': 'bytes=0-99'})
    assert expired.status_code == 403
    assert 'expired' in expired.text
    assert httpx.get(s3_services.links.url(ready)).status_code == 200, 'a fresh URL works again'


def test_a_range_request_on_a_presigned_url_returns_exactly_those_bytes(
    s3_services: Services, ready: Recording
) -> None:
    """What a browser's seek sends: a closed range, and an open one from the seek point to the end."""
    audio = stored_audio(s3_services, ready)
    url = s3_services.links.url(ready)
    part = httpx.get(url, headers={'Range': 'bytes=100-1099'})
    assert (part.status_code, part.content) == (206, audio[100:1100])
    assert part.headers['Content-Range'] == f'bytes 100-1099/{len(audio)}'
    seek = len(audio) * 95 // 100
    tail = httpx.get(url, headers={'Range': f'bytes={seek}-'})
    assert (tail.status_code, tail.content) == (206, audio[seek:])


def test_presigned_urls_serve_the_type_and_download_name_they_were_signed_with(
    s3_services: Services, ready: Recording
) -> None:
    play = httpx.get(s3_services.links.url(ready), headers={'Range': 'bytes=0-0'})
    assert play.headers['Content-Type'] == 'audio/webm'
    assert 'Content-Disposition' not in play.headers
    download = httpx.get(s3_services.links.url(ready, download=True), headers={'Range': 'bytes=0-0'})
    assert download.headers['Content-Disposition'] == content_disposition(download_name(ready))


def test_the_bucket_is_private_to_anonymous_requests(s3_services: Services, ready: Recording) -> None:
    s3 = s3_of(s3_services.storage)
    bucket_url = f'{s3.endpoint_url}/{s3.bucket}'
    audio = stored_audio(s3_services, ready)
    assert httpx.get(f'{bucket_url}/{recording_audio_key(ready)}').status_code == 403
    assert httpx.get(f'{bucket_url}?list-type=2').status_code == 403, 'nobody may list the recordings'
    assert httpx.put(f'{bucket_url}/{recording_audio_key(ready)}', content=b'x').status_code == 403
    assert stored_audio(s3_services, ready) == audio, 'the audio is untouched'


def test_a_presigned_url_opens_only_the_object_it_was_signed_for(
    s3_services: Services, make_user: UserFactory, ready: Recording, webm_5s: bytes
) -> None:
    """Editing an audio URL reaches neither another user's recording nor a longer life."""
    other = record(s3_services, make_user('Bob').id, webm_5s)
    url = s3_services.links.url(ready)
    assert httpx.get(url, headers={'Range': 'bytes=0-0'}).status_code == 206
    assert httpx.get(url.replace(str(ready.id), str(other.id))).status_code == 403
    assert httpx.get(url.replace(f'X-Amz-Expires={EXPIRY_S}', 'X-Amz-Expires=604800')).status_code == 403


def test_refused_credentials_give_one_error_line_and_a_failing_healthz(tmp_path: Path, s3_server: S3Server) -> None:
    """The README's promise, on the real app: one clear ERROR line at start-up, then 503 naming the problem."""
    bucket = fresh_bucket(s3_server)
    env = {f'VR_{name.upper()}': str(value) for name, value in bucket.items()}
    app = AppServer(tmp_path / 'data', env={**env, 'AWS_SECRET_ACCESS_KEY': 'not-the-right-secret'})
    app.data_dir.mkdir(parents=True)
    with app.log_path.open('ab') as log:
        app.process = subprocess.Popen(
            [sys.executable, app.script], cwd=ROOT, env=app.env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        first, later = health_answer(app), health_answer(app)
        start_up_log = app.log_path.read_text()  # what the app said by the time it served; shutdown is not tested here
    finally:
        app.stop()
    denied = f"access to S3 bucket '{bucket['s3_bucket']}' was denied: check the AWS credentials and the bucket policy"
    for health in (first, later):
        assert health.status_code == 503
        assert health.json()['storage'] == f'error: {denied}'
    errors = [line for line in start_up_log.splitlines() if ' ERROR ' in line or line.startswith('ERROR')]
    assert len(errors) == 1 and errors[0].endswith(
        f'S3 storage is not usable: {denied}; /api/healthz reports 503 until it is fixed'
    )
    assert 'Traceback' not in start_up_log


def health_answer(app: AppServer, timeout: float = 30) -> httpx.Response:
    """The first answer /api/healthz gives, whatever its status (AppServer.start waits for a 200)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert app.process and app.process.poll() is None, f'the app exited:\n{app.log()}'
        try:
            return httpx.get(f'{app.url}/api/healthz', timeout=5)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f'the app did not answer in {timeout} s:\n{app.log()}')
