"""What a person sees and does on the recorder, in real Chromium: shortcuts, the live indicator, the
microphone let go after Stop, a clear word when it is denied, a phone screen, dark mode. The screenshots
it takes are the README's (`make screenshots` writes them to docs/screenshots)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.support.app_server import ROOT, AppServer
from tests.support.browser import chromium, fake_microphone, onboard

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
        await page.get_by_test_id('audio-player').wait_for()
        for _ in range(20):  # the waveform is computed in the background after finalize
            if await page.get_by_test_id('waveform').count():
                break
            await page.wait_for_timeout(500)
            await page.reload()
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
        await page.get_by_test_id('record-button').tap()
        await page.get_by_test_id('stop-button').wait_for()
        await page.wait_for_timeout(2000)
        assert await no_sideways_scrolling(page)
        box = await page.get_by_test_id('stop-button').bounding_box()
        assert box is not None and box['height'] >= 44  # a comfortable touch target
        await screenshot(page, 'phone-recorder')
        await page.get_by_test_id('stop-button').tap()
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        await page.goto(f'{app_server.url}/records')
        await page.get_by_test_id('audio-player').wait_for()
        assert await no_sideways_scrolling(page)
        await screenshot(page, 'phone-records')
        for control in ('rename-button', 'delete-button', 'search-input'):
            label = await page.get_by_test_id(control).first.evaluate(
                'e => e.getAttribute("aria-label") || e.innerText || (e.labels && e.labels[0]?.innerText)'
            )
            assert label and label.strip(), f'{control} has no accessible name'
