"""On a phone the screen stays on while recording: a locked phone suspends the page and the recording with it.

Real Chromium with a phone's screen (390×844, touch). Headless Chromium grants the Screen Wake Lock, so the real
API is used; an init script only wraps `navigator.wakeLock.request` to note each lock the page takes. Headless
pages are never hidden, so hiding the page is played out as the browser does it: `visibilityState` turns
"hidden", the lock is let go, then the page is shown again.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.support.app_server import AppServer
from tests.support.browser import chromium, fake_microphone, onboard

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('phone')

PHONE = {'viewport': {'width': 390, 'height': 844}, 'is_mobile': True, 'has_touch': True, 'device_scale_factor': 3}
NOTE_WAKE_LOCKS = """(() => {
    const locks = (window.vrTestWakeLocks = []);
    const request = navigator.wakeLock.request.bind(navigator.wakeLock);
    navigator.wakeLock.request = async (type) => {
        const lock = await request(type);
        locks.push(lock);
        return lock;
    };
})()"""
NO_WAKE_LOCK = "Object.defineProperty(Navigator.prototype, 'wakeLock', {value: undefined, configurable: true})"
REFUSED_WAKE_LOCK = """navigator.wakeLock.request = () =>
    Promise.reject(new DOMException('Wake Lock permission request denied', 'NotAllowedError'))"""
HIDE_AND_SHOW = """async () => {
    const shown = (state) => {
        Object.defineProperty(document, 'visibilityState', {get: () => state, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    };
    shown('hidden');
    await Promise.all(window.vrTestWakeLocks.map((lock) => lock.release()));  // what the browser does on hiding
    shown('visible');
}"""
HELD = 'window.vrTestWakeLocks.filter((lock) => !lock.released).length'


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=20)


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(tmp_path_factory.mktemp('phone') / 'data').start()
    yield running
    running.stop()
    running.assert_clean_log()


async def phone_page(browser: Browser, init_script: str) -> Page:
    context = await browser.new_context(**PHONE)
    await context.add_init_script(init_script)
    return await context.new_page()


async def start_recording(page: Page, base_url: str, name: str) -> None:
    await onboard(page, base_url, name)
    await page.goto(f'{base_url}/recorder')
    await page.get_by_test_id('record-button').click()
    await page.get_by_test_id('stop-button').wait_for(state='visible')


async def test_the_screen_stays_on_while_recording_and_may_sleep_after_stop(
    server: AppServer, microphone: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await phone_page(browser, NOTE_WAKE_LOCKS)
        await onboard(page, server.url, 'Phone Pia')
        await page.goto(f'{server.url}/recorder')
        await page.get_by_test_id('record-button').wait_for()
        assert await page.evaluate('window.vrTestWakeLocks.length') == 0, 'no lock before recording'

        await page.get_by_test_id('record-button').click()
        await page.wait_for_function(f'{HELD} === 1')
        await page.get_by_test_id('pause-button').click()  # paused is still recording: the screen stays on
        await page.wait_for_timeout(500)
        assert await page.evaluate(HELD) == 1
        await page.get_by_test_id('resume-button').click()

        await page.evaluate(HIDE_AND_SHOW)  # another app, then back: the lock is taken again
        await page.wait_for_function(f'{HELD} === 1')
        assert await page.evaluate('window.vrTestWakeLocks.length') == 2
        assert await page.get_by_test_id('screen-hint').count() == 0, 'the screen is kept on: nothing to ask'
        await page.wait_for_timeout(1500)

        await page.get_by_test_id('stop-button').click()
        await page.wait_for_function(f'{HELD} === 0')
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        assert await page.evaluate('window.vrTestWakeLocks.length') == 2
        assert await page.evaluate('document.scrollingElement.scrollWidth <= window.innerWidth')


@pytest.mark.parametrize('browser_lock', ['missing', 'refused'])
async def test_a_browser_that_cannot_keep_the_screen_on_says_so(
    server: AppServer, microphone: Path, browser_lock: str
) -> None:
    async with chromium(microphone) as browser:
        page = await phone_page(browser, NO_WAKE_LOCK if browser_lock == 'missing' else REFUSED_WAKE_LOCK)
        await start_recording(page, server.url, f'Sleepy {browser_lock}')
        hint = page.get_by_test_id('screen-hint')
        await hint.wait_for()
        assert (await hint.inner_text()).startswith('Keep this page open and the screen on while recording')
        await page.wait_for_timeout(1500)
        assert await page.get_by_test_id('upload-status').inner_text() in ('All audio saved', 'Saving…')
        await page.get_by_test_id('stop-button').click()
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        assert await hint.count() == 0, 'nothing is recorded any more: the hint goes'
