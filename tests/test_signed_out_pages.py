"""Pages open when their session ends ("sign out on every device", a key rotation, or this browser's "Sign out")
change nothing more, and land on /onboard within 2 s, whichever instance ended it."""

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio
from nicegui.testing.user import User
from playwright.async_api import BrowserContext, Page

from services.container import Services
from tests.conftest import record
from tests.support.app_server import AppServer
from tests.support.browser import chromium, fake_microphone
from tests.test_pages import onboard, user_id_named
from tests.test_socket_input import call, connect

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('signed_out_pages')

SIGN_OUT_REACH_S = 2.0
_FIND_UPLOAD_TOKEN = """() => {
  for (const node of document.querySelectorAll('[id^="c"]')) {
    const token = getElement(node.id.slice(1))?.uploadToken;
    if (token) return token;
  }
  return null;
}"""


async def lands_on_onboard(user: User, within: float = SIGN_OUT_REACH_S) -> float:
    """How long the simulated browser took to be sent to /onboard; fails past `within`."""
    started = time.monotonic()
    while user.back_history[-1] != '/onboard':
        assert time.monotonic() - started < within, f'still on {user.back_history[-1]} after {within} s'
        await asyncio.sleep(0.02)
    await user.should_see(marker='name-input')
    return time.monotonic() - started


@pytest.fixture
def page_stays(user: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page does not look by itself, so an action is sure to reach the server before the page has left."""
    monkeypatch.setattr(sys.modules['pages.session'], 'LOOK_EVERY_S', 3600.0)  # the module the simulated app runs


async def test_an_open_page_lands_on_onboard_soon_after_a_sign_out_on_another_instance(
    user: User, page_services: Services
) -> None:
    await onboard(user, 'Elsewhere')
    await user.open('/records')
    await user.should_see(marker='sign-out-everywhere')
    await asyncio.sleep(1.0)  # the page has looked (and its process has read the credentials) by now
    page_services.users.sign_out_everywhere(user_id_named(page_services, 'Elsewhere'))  # not the page's process
    await lands_on_onboard(user)


@pytest.mark.usefixtures('page_stays')
@pytest.mark.parametrize('action', ['share', 'rename', 'delete', 'mp3'])
async def test_an_action_on_a_page_whose_session_ended_is_refused(
    user: User, page_services: Services, webm_5s: bytes, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pages.records

    monkeypatch.setattr(pages.records, 'UNDO_SECONDS', 0.2)
    await onboard(user, 'Stale page')
    owner = user_id_named(page_services, 'Stale page')
    recording = record(page_services, owner, webm_5s, title='Keep me')
    await user.open('/records')
    await user.should_see(marker='share-button')
    final_click = {'share': 'create-share', 'rename': 'rename-save', 'delete': 'confirm-delete', 'mp3': 'mp3-button'}
    if action == 'share':  # the dialog was opened while signed in
        user.find(marker='share-button').click()
        await user.should_see(marker='create-share')
    elif action == 'rename':
        user.find(marker='rename-button').click()
        await user.should_see(marker='rename-input')
        user.find(marker='rename-input').clear().type('Renamed after the sign-out')
    elif action == 'delete':
        user.find(marker='delete-button').click()
        await user.should_see(marker='confirm-delete')

    page_services.users.sign_out_everywhere(owner)
    user.find(marker=final_click[action]).click()
    await lands_on_onboard(user)
    await asyncio.sleep(0.5)  # past the undo window: a delete would have happened by now

    assert page_services.shares.active(user_id=owner, recording_id=recording.id) == []
    assert page_services.recordings.get(user_id=owner, recording_id=recording.id).title == 'Keep me'
    assert list(page_services.settings.local_storage_dir.rglob('*.mp3')) == []
    assert user.download.http_responses == []


async def test_sign_out_ends_the_upload_token_the_page_was_given(user: User, page_services: Services) -> None:
    await onboard(user, 'Plain')
    await user.open('/recorder')
    await user.should_see(marker='recorder')
    token = user.find(marker='recorder').elements.pop().props['uploadToken']
    grant = page_services.upload_tokens.verify(token)
    assert grant is not None and grant.session_id is not None
    page_services.users.check_credential(grant.user_id, grant.credential_version, grant.session_id)  # works now
    user.find(marker='sign-out').click()
    await lands_on_onboard(user)
    with pytest.raises(Exception, match='signed out'):
        page_services.users.check_credential(grant.user_id, grant.credential_version, grant.session_id)


# In a real browser: two tabs of one browser, and a second browser signed in with the same recovery key.


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(tmp_path_factory.mktemp('signed-out-pages') / 'data').start()
    yield running
    running.stop()
    running.assert_clean_log()


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=5)


async def sign_up(page: Page, base_url: str, name: str) -> str:
    """Onboards in `page` and returns the recovery key it shows once."""
    await page.goto(f'{base_url}/onboard')
    await page.get_by_test_id('name-input').fill(name)
    await page.get_by_test_id('onboard-submit').click()
    key = await page.get_by_test_id('recovery-key').inner_text()
    await page.get_by_test_id('recovery-continue').click()
    await page.wait_for_url('**/records')
    return key


async def sign_in(context: BrowserContext, base_url: str, key: str) -> Page:
    page = await context.new_page()
    await page.goto(f'{base_url}/onboard')
    await page.get_by_text('Already use Voice Recorder on another device?').click()
    await page.get_by_test_id('recovery-key-input').fill(key)
    # Enter in the key's field, as a keyboard user signs in: a pointer's press and release land where the button
    # was, and on a busy machine the form still reflowed between them (16 px, seen), which loses the click.
    await page.get_by_test_id('recovery-key-input').press('Enter')
    await arrive_at_records(page)
    return page


async def arrive_at_records(page: Page) -> None:
    """The page moves to /records once the server has signed it in; on a machine busy with the whole suite that can
    take a while, and a refusal (a notification) fails at once with its words."""
    arrived = asyncio.ensure_future(page.wait_for_url('**/records', timeout=60_000))
    refused = asyncio.ensure_future(page.locator('.q-notification').first.wait_for(timeout=60_000))
    done, pending = await asyncio.wait({arrived, refused}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if refused in done and arrived not in done:
        pytest.fail(f'signing in was refused: {await page.locator(".q-notification").first.inner_text()}')
    await next(iter(done))


async def upload_token(page: Page) -> str:
    """The token the page's recorder element (on /recorder, and the hidden one that recovers audio on /records) was
    given, read from its Vue props once it is mounted."""
    token = await page.wait_for_function(_FIND_UPLOAD_TOKEN)
    return str(await token.json_value())


async def opens_audio_channel(server: AppServer, token: str) -> bool:
    try:
        client = await connect(server, token)
    except socketio.exceptions.ConnectionError:
        return False
    try:
        answer = await call(client, 'status', {'recording_id': str(uuid.uuid4())})
        return answer['status'] == 404  # past the credential check: the recording is unknown
    finally:
        await client.disconnect()


async def test_sign_out_everywhere_in_one_tab_sends_the_other_to_onboard(server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        context = await browser.new_context()
        first = await context.new_page()
        await sign_up(first, server.url, 'Two tabs')
        second = await context.new_page()
        await second.goto(f'{server.url}/recorder')
        await second.get_by_test_id('record-button').wait_for()
        token = await upload_token(second)
        assert await opens_audio_channel(server, token)

        await first.get_by_text('Account').click()
        await first.get_by_test_id('sign-out-everywhere').click()
        clicked = time.monotonic()
        # the moment it leaves (the navigation is answered), not once /onboard has loaded on a busy machine
        await second.wait_for_url('**/onboard', timeout=SIGN_OUT_REACH_S * 1000, wait_until='commit')
        reached_s = time.monotonic() - clicked
        await first.wait_for_url('**/onboard')
        await second.get_by_test_id('name-input').wait_for()

        assert not await opens_audio_channel(server, token)  # it can record no more
        await second.goto(f'{server.url}/records')
        await second.wait_for_url('**/onboard')
        assert await second.get_by_test_id('recording-item').count() == 0
        await context.close()
    assert reached_s < SIGN_OUT_REACH_S


async def test_sign_out_ends_this_browsers_tabs_and_upload_token_but_not_another_browsers(
    server: AppServer, microphone: Path
) -> None:
    async with chromium(microphone) as browser:
        laptop, phone = await browser.new_context(), await browser.new_context()
        first = await laptop.new_page()
        key = await sign_up(first, server.url, 'Plain sign-out')
        other_tab = await laptop.new_page()
        await other_tab.goto(f'{server.url}/records')
        laptop_token = await upload_token(other_tab)
        phone_page = await sign_in(phone, server.url, key)
        phone_token = await upload_token(phone_page)

        await first.get_by_test_id('sign-out').click()
        await first.wait_for_url('**/onboard')
        await other_tab.wait_for_url('**/onboard', timeout=SIGN_OUT_REACH_S * 1000)
        assert not await opens_audio_channel(server, laptop_token)
        assert await opens_audio_channel(server, phone_token)
        await phone_page.reload()
        await phone_page.get_by_test_id('sign-out-everywhere').wait_for(state='attached')  # still signed in
        await laptop.close()
        await phone.close()
