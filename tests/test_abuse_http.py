"""A hostile client can neither read others' audio nor exhaust the server: each attack runs against the real app
over HTTP or the real socket.io channel, is refused with a plain message, and leaves the server healthy, its memory
flat and another user's recording unchanged."""

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from nicegui.testing.user import User

from services.access.upload_tokens import UploadTokens
from services.container import Services, build_services
from services.core.config import Settings
from tests.conftest import UserFactory, fresh_bucket, record
from tests.support.app_server import ROOT, AppServer
from tests.support.audio_samples import split
from tests.support.s3_server import S3Server

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('abuse_http')

MB = 1024 * 1024
ATTACK_BYTES = 100 * MB
MAX_GROWTH = 50 * MB
TOO_LARGE = {'error': 'The request body is too large: at most 65536 bytes are accepted.'}
PEAKS: dict[str, str] = {}  # what each attack did to the server's memory, printed at the end of the module


@dataclass
class Victim:
    user_id: uuid.UUID
    recording_id: uuid.UUID
    auth: dict[str, str]
    audio_url: str
    audio: bytes


def seed_victim(server: AppServer, audio: bytes) -> Victim:
    """Another user with a ready recording, made on the server's own database and folder, outside any limit."""
    services = build_services(Settings(_env_file=None, data_dir=server.data_dir, secret=server.env['VR_SECRET']))
    try:
        user, auth = UserFactory(services).with_auth('Victim')
        recording = record(services, user.id, audio, title='Private')
        url = services.links.url(recording)
    finally:
        services.close()
    victim = Victim(user.id, recording.id, auth, url, httpx.get(f'{server.url}{url}').content)
    assert len(victim.audio) > 1000
    return victim


def assert_unharmed(server: AppServer, victim: Victim) -> None:
    assert httpx.get(f'{server.url}/api/healthz', timeout=10).status_code == 200
    assert httpx.get(f'{server.url}{victim.audio_url}', timeout=10).content == victim.audio


@contextmanager
def memory_watch(server: AppServer, attack: str) -> Iterator[None]:
    """The server's resident memory around an attack; its peak is reset first, so the peak is the attack's own."""
    assert server.process
    status = Path(f'/proc/{server.process.pid}/status')
    Path(f'/proc/{server.process.pid}/clear_refs').write_text('5')

    def kib(field: str) -> int:
        line = next(line for line in status.read_text().splitlines() if line.startswith(field))
        return int(line.split()[1]) * 1024

    before = kib('VmRSS:')
    yield
    peak, after = kib('VmHWM:'), kib('VmRSS:')
    PEAKS[attack] = f'RSS {before / MB:.0f} MB before, peak {peak / MB:.0f} MB, {after / MB:.0f} MB after'
    assert peak - before < MAX_GROWTH, f'{attack}: {PEAKS[attack]}'


@pytest.fixture(scope='module', autouse=True)
def _report_peaks() -> Iterator[None]:
    yield
    if PEAKS:
        print('\nserver memory under attack:\n' + '\n'.join(f'  {name}: {line}' for name, line in PEAKS.items()))


@contextmanager
def running(tmp_path: Path, **env: str) -> Iterator[AppServer]:
    server = AppServer(tmp_path / 'data', env=env).start()
    try:
        yield server
    finally:
        server.stop()
    server.assert_clean_log()


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running(tmp_path_factory.mktemp('abuse')) as started:
        yield started


@pytest.fixture(scope='module')
def victim(server: AppServer, webm_5s: bytes) -> Victim:
    return seed_victim(server, webm_5s)


def hundred_megabytes() -> Iterator[bytes]:
    """A JSON array too long for any route, made on the fly so the attacker holds one piece at a time."""
    piece = b'1,' * 32 * 1024
    yield b'[' + piece[1:]
    for _ in range(ATTACK_BYTES // len(piece) - 1):
        yield piece


@pytest.mark.parametrize('declared', [True, False], ids=['content-length', 'chunked'])
@pytest.mark.parametrize(
    ('path', 'headers'),
    [('/api/onboard', {}), ('/api/recordings', {'Authorization': 'Bearer not-a-token'})],
    ids=['onboard-unauthenticated', 'recordings-bad-token'],
)
def test_a_100_mb_body_is_refused_with_413_before_it_is_buffered(
    server: AppServer, victim: Victim, path: str, headers: dict[str, str], declared: bool
) -> None:
    headers = {**headers, 'Content-Type': 'application/json'}
    if declared:
        headers['Content-Length'] = str(ATTACK_BYTES)
    with memory_watch(server, f'100 MB to {path}, {"declared" if declared else "chunked"}'):
        response = httpx.post(f'{server.url}{path}', content=hundred_megabytes(), headers=headers, timeout=60)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)
    assert_unharmed(server, victim)


@pytest.mark.parametrize('path', ['/onboard', '/_nicegui/client/nobody/upload/1'])
def test_niceguis_own_routes_refuse_a_declared_oversize_body_too(server: AppServer, path: str) -> None:
    headers = {'Content-Type': 'application/octet-stream', 'Content-Length': str(ATTACK_BYTES)}
    with memory_watch(server, f'100 MB declared to {path}'):
        response = httpx.post(f'{server.url}{path}', content=hundred_megabytes(), headers=headers, timeout=60)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


def test_the_chunk_route_keeps_its_own_larger_cap(server: AppServer, victim: Victim, webm_5s: bytes) -> None:
    auth = victim.auth
    created = httpx.post(f'{server.url}/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()
    chunk_url = f'{server.url}/api/recordings/{created["id"]}/chunks'
    raw = {**auth, 'Content-Type': 'application/octet-stream'}
    big = (webm_5s * (1 + 200_000 // len(webm_5s)))[:200_000]
    assert httpx.put(f'{chunk_url}/0', content=big, headers=raw).json() == {'seq': 0, 'size': 200_000}
    too_big = httpx.put(f'{chunk_url}/1', content=b'x' * (512 * 1024 + 1), headers=raw)
    assert too_big.status_code == 413 and 'at most 524288 bytes' in too_big.json()['error']


def test_an_onboarding_flood_from_one_address_gets_429_and_forwarded_for_does_not_bypass_it(
    tmp_path: Path, webm_5s: bytes
) -> None:
    with running(tmp_path, VR_ONBOARD_PER_ADDRESS_PER_HOUR='5') as flooded:
        victim = seed_victim(flooded, webm_5s)
        onboard = f'{flooded.url}/api/onboard'
        with memory_watch(flooded, 'onboarding flood'):
            assert [httpx.post(onboard, json={'name': f'Bot {n}'}).status_code for n in range(5)] == [201] * 5
            refused = httpx.post(onboard, json={'name': 'Bot 6'})
            forged = httpx.post(onboard, json={'name': 'Bot 7'}, headers={'X-Forwarded-For': '203.0.113.9'})
        for answer in (refused, forged):
            assert answer.status_code == 429
            assert 1 <= int(answer.headers['Retry-After']) <= 3600
            assert answer.json()['error'].startswith('too many sign-ups or sign-ins: at most 5 per hour')
        assert_unharmed(flooded, victim)


def test_with_redis_two_instances_count_in_the_same_window(tmp_path: Path, redis_url: str) -> None:
    with (
        running(tmp_path / 'a', VR_ONBOARD_PER_ADDRESS_PER_HOUR='3', NICEGUI_REDIS_URL=redis_url) as first,
        running(tmp_path / 'b', VR_ONBOARD_PER_ADDRESS_PER_HOUR='3', VR_REDIS_URL=redis_url) as second,
    ):

        def onboard(server: AppServer) -> int:
            return httpx.post(f'{server.url}/api/onboard', json={'name': 'Roaming'}).status_code

        assert [onboard(first), onboard(second), onboard(first), onboard(second)] == [201, 201, 201, 429]


def test_behind_a_trusted_proxy_each_client_address_has_its_own_onboarding_limit(tmp_path: Path) -> None:
    with running(tmp_path, VR_ONBOARD_PER_ADDRESS_PER_HOUR='2', VR_TRUSTED_PROXY_COUNT='1') as proxied:

        def onboard(forwarded_for: str) -> int:
            headers = {'X-Forwarded-For': forwarded_for}
            return httpx.post(f'{proxied.url}/api/onboard', json={'name': 'Proxied'}, headers=headers).status_code

        assert [onboard('198.51.100.1') for _ in range(3)] == [201, 201, 429]
        assert onboard('203.0.113.5, 198.51.100.1') == 429  # what the client wrote is left of what the proxy saw
        assert onboard('198.51.100.2') == 201


@pytest.fixture
def _two_sign_ins_an_hour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('VR_ONBOARD_PER_ADDRESS_PER_HOUR', '2')


async def test_the_onboard_page_counts_sign_ups_and_key_guesses_per_address(
    _two_sign_ins_an_hour: None, user: User
) -> None:
    await user.open('/onboard')
    for _ in range(2):
        user.find(marker='recovery-key-input').clear().type('a guessed key')
        user.find(marker='recovery-submit').click()
        await user.should_see('does not match any account')
    user.find(marker='recovery-submit').click()
    await user.should_see('Too many sign-ups or sign-ins: at most 2 per hour')
    user.find(marker='name-input').type('Flood')
    user.find(marker='onboard-submit').click()
    await user.should_see('Too many sign-ups or sign-ins: at most 2 per hour')
    await user.should_not_see(marker='recovery-key')


async def connect(server: AppServer, token: str) -> tuple[socketio.AsyncClient, list[Any]]:
    """A /vr connection as the recorder page opens it; refusals are collected rather than raised."""
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on('connect_error', refusals.append, namespace='/vr')
    with suppress(socketio.exceptions.ConnectionError):
        await client.connect(
            server.url,
            socketio_path='/_nicegui_ws/socket.io',
            namespaces=['/vr'],
            auth={'token': token},
            transports=['websocket'],
            wait_timeout=5,
        )
    return client, refusals


async def test_a_vr_connect_flood_is_refused_with_a_plain_message(tmp_path: Path, webm_5s: bytes) -> None:
    with running(tmp_path, VR_VR_CONNECTS_PER_ADDRESS_PER_MINUTE='5') as flooded:
        victim = seed_victim(flooded, webm_5s)
        token = UploadTokens(flooded.env['VR_SECRET']).issue(victim.user_id)
        with memory_watch(flooded, '/vr connect flood'):
            outcomes = []
            for _ in range(7):
                client, refusals = await connect(flooded, token)
                outcomes.append((client.connected, refusals))
                await client.disconnect()
        assert [connected for connected, _ in outcomes] == [True] * 5 + [False] * 2
        for _, refusals in outcomes[5:]:
            assert refusals[0]['message'].startswith('too many connections: at most 5 per minute; try again in')
        assert_unharmed(flooded, victim)


async def test_a_vr_event_flood_gets_a_retryable_429(tmp_path: Path, webm_5s: bytes) -> None:
    with running(tmp_path, VR_VR_EVENTS_PER_USER_PER_MINUTE='10') as flooded:
        victim = seed_victim(flooded, webm_5s)
        attacker = build_services_user(flooded)
        client, _ = await connect(flooded, UploadTokens(flooded.env['VR_SECRET']).issue(attacker))
        try:
            with memory_watch(flooded, '/vr event flood'):
                started = time.monotonic()
                created = await client.call('create', {'mime_type': 'audio/webm', 'title': None}, namespace='/vr')
                answers = [
                    await client.call('chunk', {**created, 'seq': seq, 'data': piece}, namespace='/vr')
                    for seq, piece in enumerate(split(webm_5s, 1000)[:30])
                ]
        finally:
            await client.disconnect()
        took_s = time.monotonic() - started
        assert all(answer['ok'] for answer in answers[:9]), answers[:9]
        refused = [answer for answer in answers[9:] if not answer['ok']]
        # The limit is a rate: 10 a minute, over a window that slides. On a machine busy with the whole suite the
        # flood itself can take many seconds, and the window lets through what those seconds earn, no more.
        earned = int(10 * took_s / 60) + 2
        assert len(refused) >= len(answers[9:]) - earned, (took_s, answers[9:])
        for answer in refused:
            assert (answer['ok'], answer['status'], answer['retry']) == (False, 429, True)
            assert answer['error'].startswith('too many audio messages: at most 10 per minute')
            assert answer['retry_after_s'] >= 1
        assert_unharmed(flooded, victim)


def build_services_user(server: AppServer) -> uuid.UUID:
    services = build_services(Settings(_env_file=None, data_dir=server.data_dir, secret=server.env['VR_SECRET']))
    try:
        return UserFactory(services)('Event flooder').id
    finally:
        services.close()


def test_a_revoked_share_stops_serving_its_audio_at_once(server: AppServer, victim: Victim) -> None:
    auth = victim.auth
    shares = f'{server.url}/api/recordings/{victim.recording_id}/shares'
    share_id = httpx.post(shares, json={'expires_in_s': 3600}, headers=auth).json()['id']
    page = httpx.get(f'{server.url}/share/{share_id}').text
    audio_url = f'{server.url}/api/shares/{share_id}/audio'
    assert f'/api/shares/{share_id}/audio' in page and 'signature=' not in page  # never the owner's own URL
    whole = httpx.get(audio_url)
    part = httpx.get(audio_url, headers={'Range': 'bytes=100-199'})
    assert (whole.status_code, whole.content) == (200, victim.audio)
    assert (part.status_code, part.content) == (206, victim.audio[100:200])
    assert httpx.delete(f'{shares}/{share_id}', headers=auth).status_code == 204
    for headers in ({}, {'Range': 'bytes=200-299'}):
        gone = httpx.get(audio_url, headers=headers)
        assert gone.status_code == 404 and gone.json() == {'error': 'this link has expired or was revoked'}
    assert_unharmed(server, victim)


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)
def test_a_stream_under_way_ends_once_its_share_is_revoked(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    owner = make_user('Owner').id
    ready = record(services, owner, webm_5s)
    share = services.shares.create(user_id=owner, recording_id=ready.id, lifetime=timedelta(hours=1))
    stream = services.shares.while_active(share.id, iter([b'a', b'b', b'c', b'd']), recheck_s=0)
    assert [next(stream), next(stream)] == [b'a', b'b']
    services.shares.revoke(user_id=owner, recording_id=ready.id, share_id=share.id)
    assert list(stream) == []


@pytest.mark.parametrize('storage_kind', ['local', 's3'], indirect=True)
@pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
def test_share_audio_streams_through_the_app_on_every_storage(
    api: httpx.Client, services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    owner = make_user('Owner').id
    ready = record(services, owner, webm_5s)
    share = services.shares.create(user_id=owner, recording_id=ready.id, lifetime=timedelta(hours=1))
    whole = api.get(f'/api/shares/{share.id}/audio').content
    part = api.get(f'/api/shares/{share.id}/audio', headers={'Range': 'bytes=10-19'})
    assert (part.status_code, part.content, part.headers['Cache-Control']) == (206, whole[10:20], 'no-store')
    services.shares.revoke(user_id=owner, recording_id=ready.id, share_id=share.id)
    assert api.get(f'/api/shares/{share.id}/audio', headers={'Range': 'bytes=10-19'}).status_code == 404


def test_a_short_secret_is_refused_at_start_up_with_one_clear_line(tmp_path: Path) -> None:
    env = {**AppServer(tmp_path / 'data').env, 'VR_SECRET': 'short-but-chosen'}
    done = subprocess.run([sys.executable, 'main.py'], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    errors = [line for line in (done.stdout + done.stderr).splitlines() if 'ERROR' in line]
    assert len(errors) == 1 and errors[0].endswith(
        'cannot start: VR_SECRET is 16 characters; set a random value of at least 32 (e.g. openssl rand -base64 48)'
    )


@pytest.mark.parametrize('path', ['/records', '/api/healthz', '/onboard'])
def test_every_response_carries_the_security_headers(server: AppServer, path: str) -> None:
    response = httpx.get(f'{server.url}{path}')
    csp = response.headers['Content-Security-Policy']
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert response.headers['X-Content-Type-Options'] == 'nosniff'
    assert response.headers['Referrer-Policy'] == 'same-origin'
    assert 'secure' not in response.headers.get('set-cookie', '').lower()  # plain http in development


def test_in_production_cookies_are_secure_and_the_policy_admits_presigned_audio(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = {f'VR_{name.upper()}': str(value) for name, value in fresh_bucket(s3_server).items()}
    public = 'https://s3.example.test'
    env = {**bucket, 'VR_ENVIRONMENT': 'production', 'VR_S3_PUBLIC_ENDPOINT_URL': public}
    with running(tmp_path, **env) as deployed:
        response = httpx.get(f'{deployed.url}/onboard')
    csp = {part.split()[0]: part.split()[1:] for part in response.headers['Content-Security-Policy'].split('; ')}
    assert public in csp['media-src'] and public in csp['img-src']
    assert '; secure' in response.headers['set-cookie'].lower()
