"""Rotating the key, or "sign out on every device", ends every browser session and upload token at once."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import socketio
from nicegui.testing.user import User
from sqlalchemy import event

from api.audio_channel import AudioChannel
from services.access.upload_tokens import UploadTokens
from services.access.users import UserService
from services.container import Services, build_services
from services.core.config import Settings
from services.core.errors import Unauthorized
from tests.conftest import UserFactory
from tests.support.app_server import AppServer
from tests.test_pages import SERVER_WORK_RETRIES, onboard, user_id_named
from tests.test_socket_input import SECRET, call, connect

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('credentials')


async def test_rotating_the_key_signs_out_the_browser(user: User, page_services: Services) -> None:
    await onboard(user, 'Rotator')
    await user.open('/records')
    await user.should_see('Your recordings')
    page_services.users.rotate_token(user_id_named(page_services, 'Rotator'))
    await user.open('/records')
    await user.should_see(marker='name-input')  # back on /onboard


async def test_sign_out_on_every_device_ends_this_and_other_sessions(user: User, page_services: Services) -> None:
    key = await onboard(user, 'Everywhere')
    user_id = user_id_named(page_services, 'Everywhere')
    other_browser_version = page_services.users.get(user_id).credential_version
    await user.should_see(marker='sign-out-everywhere', retries=SERVER_WORK_RETRIES)  # built after the list
    user.find(marker='sign-out-everywhere').click()
    await user.should_see(marker='name-input')
    with pytest.raises(Exception, match='signed out'):
        page_services.users.current(user_id, other_browser_version)
    # the recovery key still signs in, with a new session
    await user.open('/onboard')
    user.find(marker='recovery-key-input').type(key)
    user.find(marker='recovery-submit').click()
    await user.should_see('Your recordings')


@pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
async def test_a_sign_out_ends_one_browser_session_and_sign_out_everywhere_all(
    services: Services, make_user: UserFactory
) -> None:
    user, users = make_user('Sessions'), services.users
    laptop, phone = uuid.uuid4(), uuid.uuid4()
    await users.credentials.check(user.id, 1, laptop)  # remembered by this process from now on
    users.end_session(user.id, laptop)
    users.end_session(user.id, laptop)  # two tabs signing out at once: already ended
    with pytest.raises(Unauthorized):
        users.check_credential(user.id, 1, laptop)
    with pytest.raises(Unauthorized):  # this process forgot what it had read, at once
        await users.credentials.check(user.id, 1, laptop)
    await users.credentials.check(user.id, 1, phone)
    users.sign_out_everywhere(user.id)
    with pytest.raises(Unauthorized):
        await users.credentials.check(user.id, 1, phone)
    await users.credentials.check(user.id, 2, phone)


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(tmp_path_factory.mktemp('credentials') / 'data').start()
    yield running
    running.stop()
    running.assert_clean_log()


async def test_an_upload_token_issued_before_a_rotation_no_longer_opens_the_audio_channel(server: AppServer) -> None:
    body = httpx.post(f'{server.url}/api/onboard', json={'name': 'Leaked'}).json()
    issued_before = UploadTokens(SECRET).issue(uuid.UUID(body['user_id']), 1)
    client = await connect(server, issued_before)  # works until the rotation
    assert (await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'before'}))['ok']
    await client.disconnect()

    rotated = httpx.post(f'{server.url}/api/token/rotate', headers={'Authorization': f'Bearer {body["token"]}'})
    assert rotated.status_code == 200
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(server, issued_before)
    fresh = UploadTokens(SECRET).issue(uuid.UUID(body['user_id']), 2)  # what a page loaded now is given
    client = await connect(server, fresh)
    assert (await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'after'}))['ok']
    await client.disconnect()


async def disconnected_within(client: socketio.AsyncClient, seconds: float) -> float:
    """How long the server took to close the client's `/vr` namespace; fails past `seconds`."""
    started = time.monotonic()
    while '/vr' in client.namespaces:
        assert time.monotonic() - started < seconds, f'the audio connection was still open after {seconds} s'
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_rotation_closes_the_open_audio_connections_at_once(server: AppServer) -> None:
    body = httpx.post(f'{server.url}/api/onboard', json={'name': 'Open socket'}).json()
    client = await connect(server, UploadTokens(SECRET).issue(uuid.UUID(body['user_id']), 1))
    try:
        assert (await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'open'}))['ok']
        httpx.post(f'{server.url}/api/token/rotate', headers={'Authorization': f'Bearer {body["token"]}'})
        await disconnected_within(client, 1.0)
    finally:
        await client.disconnect()


@pytest.fixture
def other_instance(server: AppServer) -> Iterator[Services]:
    """Services on the server's database but in this process: what another instance behind a load balancer does
    there, this server hears of only through the database."""
    built = build_services(Settings(_env_file=None, data_dir=server.data_dir, secret=SECRET, transcribe=False))
    yield built
    built.close()


async def test_a_sign_out_on_another_instance_refuses_a_new_recording_at_once(
    server: AppServer, other_instance: Services
) -> None:
    user, _ = other_instance.users.onboard(name='Two instances')
    client = await connect(server, UploadTokens(SECRET).issue(user.id, 1))
    try:
        assert (await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'before'}))['ok']
        other_instance.users.sign_out_everywhere(user.id)
        answer = await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'after'})  # no waiting, no cache
        assert (answer['ok'], answer['status'], answer['retry']) == (False, 401, False), answer
        assert 'signed out' in answer['error']
        await disconnected_within(client, 1.0)
    finally:
        await client.disconnect()


async def test_a_plain_sign_out_ends_that_sessions_upload_tokens_only(
    server: AppServer, other_instance: Services
) -> None:
    user, _ = other_instance.users.onboard(name='Two browsers')
    here, elsewhere = uuid.uuid4(), uuid.uuid4()
    tokens = UploadTokens(SECRET)
    open_here = await connect(server, tokens.issue(user.id, 1, session_id=here))
    try:
        other_instance.users.end_session(user.id, here)  # "Sign out" in the browser that has session `here`
        answer = await call(open_here, 'create', {'mime_type': 'audio/webm', 'title': 'after'})
        assert (answer['ok'], answer['status']) == (False, 401), answer
        await disconnected_within(open_here, 1.0)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(server, tokens.issue(user.id, 1, session_id=here))
        other_browser = await connect(server, tokens.issue(user.id, 1, session_id=elsewhere))
        assert (await call(other_browser, 'create', {'mime_type': 'audio/webm', 'title': 'still in'}))['ok']
        await other_browser.disconnect()
    finally:
        await open_here.disconnect()


class SocketServerStub:
    """Stands in for python-socketio's server, so a test can send thousands of events without a network and see
    which connections the channel closed."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[..., Awaitable[Any]]] = {}
        self.closed: list[str] = []

    def on(self, name: str, handler: Callable[..., Awaitable[Any]], namespace: str | None = None) -> None:
        self.handlers[name] = handler

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        self.closed.append(sid)
        await self.handlers['disconnect'](sid)


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)
async def test_events_after_a_revocation_are_limited_before_any_database_read(
    services: Services, make_user: UserFactory
) -> None:
    services.rate_limits.vr_events.amount = 50
    user = make_user('Flood')
    sio = SocketServerStub()
    channel = AudioChannel(services, sio)  # type: ignore[arg-type]
    channel.register()
    token = services.upload_tokens.issue(user.id, user.credential_version)
    try:
        await sio.handlers['connect']('flood', {}, {'token': token})
        UserService(services.database).sign_out_everywhere(user.id)  # on another instance: this one is not told
        await asyncio.sleep(services.settings.credential_recheck_s)
        reads = []
        event.listen(services.database.engine, 'before_cursor_execute', lambda *args: reads.append(args[2]))
        answers = await asyncio.gather(*(sio.handlers['chunk']('flood', {}) for _ in range(3000)))
    finally:
        channel.close()
    statuses = [answer['status'] for answer in answers]
    assert statuses.count(429) == 3000 - 50
    assert statuses.count(401) == 50
    assert len(reads) == 1, reads  # one read of the user's credentials, shared by every event that got that far
    assert sio.closed == ['flood']
