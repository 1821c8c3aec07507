"""Rotating the key, or "sign out on every device", ends every browser session and upload token at once."""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
import socketio
from nicegui.testing.user import User

from api.audio_channel import RECHECK_CREDENTIALS_S
from services.container import Services
from services.upload_tokens import UploadTokens

from .support.app_server import AppServer
from .test_pages import onboard, user_id_named
from .test_socket_input import SECRET, call, connect


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
    user.find(marker='sign-out-everywhere').click()
    await user.should_see(marker='name-input')
    with pytest.raises(Exception, match='signed out'):
        page_services.users.current(user_id, other_browser_version)
    # the recovery key still signs in, with a new session
    await user.open('/onboard')
    user.find(marker='recovery-key-input').type(key)
    user.find(marker='recovery-submit').click()
    await user.should_see('Your recordings')


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


async def test_an_open_audio_channel_stops_taking_audio_soon_after_a_sign_out(server: AppServer) -> None:
    body = httpx.post(f'{server.url}/api/onboard', json={'name': 'Open socket'}).json()
    client = await connect(server, UploadTokens(SECRET).issue(uuid.UUID(body['user_id']), 1))
    try:
        assert (await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'open'}))['ok']
        httpx.post(f'{server.url}/api/token/rotate', headers={'Authorization': f'Bearer {body["token"]}'})
        await asyncio.sleep(RECHECK_CREDENTIALS_S + 1)
        answer = await call(client, 'create', {'mime_type': 'audio/webm', 'title': 'after sign-out'})
        assert (answer['ok'], answer['status'], answer['retry']) == (False, 401, False), answer
        assert 'signed out' in answer['error']
    finally:
        await client.disconnect()
