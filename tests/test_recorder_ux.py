"""What a person sees and does on the recorder, in real Chromium: shortcuts, the live indicator, the
microphone let go after Stop, a clear word when it is denied, a phone screen, dark mode. The screenshots
it takes are the README's (`make screenshots` writes them to docs/screenshots)."""

import json
import os
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from pages.share_dialog import expiry_text
from tests.support.app_server import ROOT, AppServer
from tests.support.audio_samples import require
from tests.support.browser import CHROMIUM_FLAGS, chromium, fake_microphone, onboard
from tools.make_icons import ICONS, png

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('recorder_ux')

SCREENSHOTS = Path(os.environ.get('VR_SCREENSHOT_DIR') or ROOT / 'tests' / 'artifacts')


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=20)


@pytest.fixture(scope='module')
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = AppServer(tmp_path_factory.mktemp('ux') / 'data').start()
    yield server
    server.stop()
    server.assert_clean_log()


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f'{name}.png'))


async def recorder_state(page: Page) -> str:
    return await page.locator('.vr-recorder').get_attribute('data-vr-state') or ''


async def no_sideways_scrolling(page: Page) -> bool:
    return bool(await page.evaluate('document.scrollingElement.scrollWidth <= window.innerWidth'))


# How a control looks: its fill, its border and its size; Pause and Stop must differ in more than their label.
LOOKS = 'e => { const s = getComputedStyle(e); return [s.backgroundColor, s.borderStyle, e.offsetWidth]; }'
# The header in one row: every visible link and button centred on the same line, the bar no taller than one row.
HEADER_SPREAD = """() => {
    const centres = [...document.querySelectorAll('.vr-header a, .vr-header button')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const box = e.getBoundingClientRect(); return box.top + box.height / 2; });
    return [Math.max(...centres) - Math.min(...centres), document.querySelector('.vr-header').offsetHeight];
}"""


async def assert_header_in_one_row(page: Page) -> None:
    spread, height = await page.evaluate(HEADER_SPREAD)
    assert spread < 8 and height <= 64, f'the header wraps: centres {spread} px apart, {height} px tall'


async def assert_in_thumb_reach(page: Page, test_id: str) -> None:
    """On a phone the main control is in the lower half of the screen, centred, and big."""
    box = await page.get_by_test_id(test_id).bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    centre_x, centre_y = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
    assert viewport['height'] / 2 < centre_y < viewport['height'] - box['height'] / 2, f'{test_id} at {box}'
    assert abs(centre_x - viewport['width'] / 2) < 8, f'{test_id} is not centred: {box}'
    assert box['width'] >= 72 and box['height'] >= 72, f'{test_id} is small: {box}'


async def test_keyboard_shortcuts_indicator_and_microphone_release(app_server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page(viewport={'width': 1100, 'height': 760})
        await page.goto(f'{app_server.url}/onboard')
        await page.get_by_test_id('name-input').fill('Keyboard Kai')
        await screenshot(page, 'onboard')
        await page.get_by_test_id('onboard-submit').click()
        await page.get_by_test_id('recovery-continue').click()
        await page.wait_for_url('**/records')
        await page.goto(f'{app_server.url}/recorder')
        await page.get_by_test_id('record-button').wait_for()
        hints = await page.get_by_test_id('keyboard-hints').inner_text()
        assert 'Space' in hints and 'Enter' in hints, 'the shortcuts the page supports are shown'
        assert await page.get_by_text('Microphone level').is_visible()
        assert await page.get_by_role('meter', name='Microphone level').count() == 1

        await page.keyboard.press('Space')
        await page.wait_for_function('document.title.startsWith("● Recording")')
        assert await recorder_state(page) == 'recording'
        await page.wait_for_timeout(2500)
        await screenshot(page, 'recorder')
        await page.keyboard.press('Space')
        await page.wait_for_function('document.title.startsWith("❚❚ Paused")')
        paused_at = await page.get_by_test_id('recording-timer').inner_text()
        await page.wait_for_timeout(1500)
        assert await page.get_by_test_id('recording-timer').inner_text() == paused_at  # the clock stops too
        await page.keyboard.press('Space')
        await page.wait_for_timeout(1500)
        await page.keyboard.press('Enter')
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)

        tracks_ended = await page.evaluate(
            'getElement(document.querySelector(".vr-recorder").id.slice(1)).tracks.every(t => t.readyState === "ended")'
        )
        assert tracks_ended, 'the microphone is still in use after Stop'
        assert not (await page.title()).startswith('●')

        await page.get_by_test_id('saved-link').click()
        await page.get_by_test_id('audio-player').wait_for(state='attached')  # ours: the native one is hidden
        for _ in range(20):  # the waveform is computed in the background after finalize
            if await page.get_by_test_id('waveform').count():
                break
            await page.wait_for_timeout(500)
            await page.reload()
        await page.get_by_test_id('recording-toggle').first.click()  # the row opens to its player
        waveform = page.get_by_test_id('waveform')
        await waveform.wait_for()
        await screenshot(page, 'records')

        box = await waveform.bounding_box()
        assert box is not None
        await page.mouse.click(box['x'] + box['width'] * 0.5, box['y'] + box['height'] / 2)
        position = await page.get_by_test_id('audio-player').evaluate(
            'a => new Promise(r => setTimeout(() => r([a.currentTime, a.duration]), 300))'
        )
        assert position[0] == pytest.approx(position[1] / 2, abs=0.3), 'a click on the waveform seeks'

        async with page.expect_download() as download_info:
            await page.get_by_test_id('mp3-button').click()
        download = await download_info.value
        assert download.suggested_filename.endswith('.mp3')
        head = Path(await download.path()).read_bytes()[:3]
        assert head == b'ID3' or head[:2] == b'\xff\xfb'


async def test_a_denied_microphone_is_explained(app_server: AppServer, microphone: Path) -> None:
    async with chromium(microphone, allow_microphone=False) as browser:
        page = await browser.new_page()
        await onboard(page, app_server.url, 'Denied Dana')
        await page.goto(f'{app_server.url}/recorder')
        await page.get_by_test_id('record-button').click()
        status = page.get_by_test_id('upload-status')
        await page.wait_for_function(
            'document.querySelector("[data-testid=upload-status]").textContent.includes("Microphone access was denied")'
        )
        assert await recorder_state(page) == 'error'
        assert 'site settings' in await status.inner_text()
        assert await page.get_by_test_id('record-button').is_visible()  # they can try again


async def test_a_phone_screen_in_dark_mode(app_server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        context = await browser.new_context(
            viewport={'width': 390, 'height': 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            color_scheme='dark',
        )
        page = await context.new_page()
        await onboard(page, app_server.url, 'Phone Pia')
        await page.goto(f'{app_server.url}/recorder')
        assert await page.evaluate('document.body.classList.contains("body--dark")')
        await page.get_by_test_id('record-button').wait_for()
        await assert_header_in_one_row(page)
        assert await no_sideways_scrolling(page)
        await assert_in_thumb_reach(page, 'record-button')
        assert not await page.get_by_test_id('keyboard-hints').is_visible(), 'no keyboard hints on a touch screen'
        await page.get_by_test_id('record-button').tap()
        await page.get_by_test_id('stop-button').wait_for()
        await page.wait_for_timeout(2000)
        assert await no_sideways_scrolling(page)
        await assert_in_thumb_reach(page, 'stop-button')  # where Record was: the thumb stays put
        pause, stop = [await page.get_by_test_id(f'{name}-button').evaluate(LOOKS) for name in ('pause', 'stop')]
        assert pause != stop, f'Pause and Stop look alike: {pause}'
        await screenshot(page, 'phone-recorder')
        await page.get_by_test_id('stop-button').tap()
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        await page.goto(f'{app_server.url}/records')
        await page.get_by_test_id('recording-toggle').first.tap()  # the row opens to its player
        await page.get_by_test_id('player-play').first.wait_for()
        assert await no_sideways_scrolling(page)
        await screenshot(page, 'phone-records')
        for control in ('rename-button', 'delete-button', 'search-input'):
            label = await page.get_by_test_id(control).first.evaluate(
                'e => e.getAttribute("aria-label") || e.innerText || (e.labels && e.labels[0]?.innerText)'
            )
            assert label and label.strip(), f'{control} has no accessible name'


async def test_the_app_installs_and_opens_on_the_recorder(app_server: AppServer, tmp_path: Path) -> None:
    """Chromium's own verdict over CDP, in a profile of its own: it installs nothing from an incognito context,
    which every Playwright `new_context` is."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / 'profile', executable_path=require('chromium'), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = await context.new_page()
            await page.goto(f'{app_server.url}/onboard')
            await page.get_by_test_id('name-input').wait_for()
            cdp = await context.new_cdp_session(page)
            assert (await cdp.send('Page.getInstallabilityErrors'))['installabilityErrors'] == []
            manifest = await cdp.send('Page.getAppManifest')
            assert manifest['errors'] == []
            assert manifest['manifest']['startUrl'] == f'{app_server.url}/recorder'
            assert manifest['manifest']['display'] == 'kStandalone'
            icons = {
                (icon['sizes'], icon.get('purpose', 'any')): icon['src']
                for icon in json.loads(manifest['data'])['icons']
            }
            assert set(icons) == {('192x192', 'any'), ('512x512', 'any'), ('512x512', 'maskable')}
            touch_icon = await page.evaluate('document.querySelector("link[rel=apple-touch-icon]").href')
            for size, url in [*((sizes, src) for (sizes, _), src in icons.items()), ('180x180', touch_icon)]:
                response = await page.request.get(url if url.startswith('http') else app_server.url + url)
                assert response.ok and response.headers['content-type'] == 'image/png', url
                width, height = struct.unpack('>II', (await response.body())[16:24])  # the PNG's IHDR
                assert f'{width}x{height}' == size, url
        finally:
            await context.close()


def test_the_icons_are_the_ones_the_script_draws() -> None:
    assert (ICONS / 'icon-192.png').read_bytes() == png(192, False), 'run `python -m tools.make_icons`'


RECORDER = 'getElement(document.querySelector(".vr-recorder").id.slice(1))'


def test_a_link_says_when_it_stops_working() -> None:
    now = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
    assert expiry_text(now + timedelta(days=7), now + timedelta(seconds=3), 'Europe/Berlin') == (
        'Works until 2026-12-13 22:00 (in 7 days)'
    )
    assert expiry_text(now + timedelta(hours=23, minutes=40), now, None).endswith('(in 1 day)')
    assert expiry_text(now + timedelta(minutes=59), now, None).endswith('(in 1 hour)')
    assert expiry_text(now + timedelta(minutes=20), now, None) == 'Works until 2026-12-06 21:20 (within the hour)'


# Headless Chromium on Linux has no share sheet; this one notes what the page asks it to share.
FAKE_SHARE_SHEET = """navigator.share = (data) => { window.vrShared = data; return Promise.resolve(); }"""


async def open_share_dialog(page: Page) -> None:
    """The first recording's Share button, in its row opened first where the list shows rows."""
    await page.get_by_test_id('recording-item').first.wait_for()
    share = page.get_by_test_id('share-button').first
    if not await share.is_visible() and await page.get_by_test_id('recording-toggle').count():
        await page.get_by_test_id('recording-toggle').first.click()
    await share.click()
    await page.get_by_test_id('create-share').wait_for()


async def test_sharing_says_until_when_and_offers_the_share_sheet(app_server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, app_server.url, 'Sharing Sam')
        await page.goto(f'{app_server.url}/recorder')
        await page.get_by_test_id('record-button').click()
        await page.wait_for_function(f'{RECORDER}.elapsedMs() > 2000')
        await page.get_by_test_id('stop-button').click()
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)

        await page.goto(f'{app_server.url}/records')
        await open_share_dialog(page)
        await page.get_by_test_id('share-lifetime').click()
        await page.get_by_role('option', name='1 day').click()
        await page.get_by_test_id('create-share').click()
        expiry = page.get_by_test_id('share-expiry')
        await expiry.wait_for()
        assert (await expiry.inner_text()).startswith('Works until') and '(in 1 day)' in await expiry.inner_text()
        assert await page.get_by_test_id('copy-link').is_visible()
        assert not await page.get_by_test_id('share-native').is_visible(), 'no share sheet here: Copy link only'
        url = await page.get_by_test_id('share-url').input_value()

        await page.context.add_init_script(FAKE_SHARE_SHEET)
        await page.reload()
        await open_share_dialog(page)
        await page.get_by_test_id('share-native').click()
        shared = await page.wait_for_function('window.vrShared')
        assert (await shared.json_value())['url'] == url

        await page.goto(url)
        await page.get_by_test_id('audio-player').wait_for()
        meta = await page.get_by_test_id('share-meta').inner_text()
        assert re.fullmatch(r'Recorded \d{4}-\d\d-\d\d \d\d:\d\d( UTC)? · 0:0[2-4]', meta), meta
        assert await page.get_by_text('Recording ', exact=False).first.is_visible()  # the title
        assert 'This link works until' in await page.get_by_test_id('share-until').inner_text()
