"""WCAG 2.1 AA as axe-core measures it, in real Chromium: no serious or critical violation on any page or state a
person meets, in light and dark, on a desktop and on a 390×844 touch phone; on the phone every control is at least
44×44 px, and a keyboard user sees where the focus is.

One app server and one browser serve the module (each case gets its own context: its own user, theme and screen)."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from tests.support.app_server import AppServer
from tests.support.axe import axe_source, describe, serious_violations
from tests.support.browser import chromium, fake_microphone, onboard

pytestmark = [pytest.mark.xdist_group('accessibility'), pytest.mark.asyncio(loop_scope='module')]

DESKTOP: dict[str, Any] = {'viewport': {'width': 1280, 'height': 800}}
PHONE: dict[str, Any] = {'viewport': {'width': 390, 'height': 844}, 'is_mobile': True, 'has_touch': True}
SCREENS = {'desktop': DESKTOP, 'phone': PHONE}
SETTLED = '!document.querySelector("[class*=-enter-active], [class*=-leave-active]")'  # no Quasar transition running
# What a finger can press: the visible controls, measured by the box that takes the touch.
SMALL_TARGETS = """() => [...document.querySelectorAll(
        'button, a[href], [role=button], [role=slider], [role=switch], audio, .q-field__control, .q-toggle__inner')]
    .filter(e => e.offsetParent !== null)
    .map(e => [e, e.getBoundingClientRect()])
    .filter(([e, box]) => box.width < 44 || box.height < 44)
    .map(([e, box]) => `${e.dataset.testid || e.getAttribute('aria-label') || e.textContent.trim().slice(0, 30)
        || e.className} ${Math.round(box.width)}×${Math.round(box.height)}`)"""

HOVER_TINTED = 'button => getComputedStyle(button.querySelector(".q-focus-helper")).opacity === "0.15"'
FOCUSED = """() => {
    const e = document.activeElement, style = getComputedStyle(e);
    return [`${e.tagName} ${(e.textContent || '').trim().slice(0, 20)}`,
            style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2];
}"""


@pytest.fixture(scope='module')
def axe() -> str:
    return axe_source()


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    # Transcripts on, so the pages show what users see (the live transcript switch, transcript states), with the
    # workers external: none runs here, this is about the pages.
    env = {'VR_TRANSCRIBE': 'true', 'VR_TRANSCRIBE_WORKER': 'external'}
    running = AppServer(tmp_path_factory.mktemp('accessibility') / 'data', env=env).start()
    yield running
    running.stop()
    running.assert_clean_log()


@pytest_asyncio.fixture(scope='module', loop_scope='module')
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    async with chromium(fake_microphone(tmp_path_factory.mktemp('mic'), seconds=20)) as launched:
        yield launched


async def open_page(browser: Browser, screen: str, theme: str) -> Page:
    context = await browser.new_context(**SCREENS[screen], color_scheme=theme)
    return await context.new_page()


class Audit:
    """Runs axe on each state it is shown and keeps what it found, so one failure names every problem at once."""

    def __init__(self, page: Page, source: str) -> None:
        self.page = page
        self.source = source
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.small: dict[str, list[str]] = {}

    async def check(self, where: str, *, targets: bool = False) -> None:
        await self.page.wait_for_function(SETTLED)
        violations = await serious_violations(self.page, self.source)
        if violations:
            self.found[where] = violations
        if targets and (small := await self.page.evaluate(SMALL_TARGETS)):
            self.small[where] = small


@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('screen', ['desktop', 'phone'])
async def test_no_serious_axe_violation_anywhere(
    server: AppServer, browser: Browser, axe: str, screen: str, theme: str
) -> None:
    page = await open_page(browser, screen, theme)
    audit = Audit(page, axe)
    phone = screen == 'phone'
    await page.goto(f'{server.url}/onboard')
    await page.get_by_test_id('name-input').wait_for()
    assert await page.evaluate('document.body.classList.contains("body--dark")') == (theme == 'dark')
    await audit.check('/onboard')
    await onboard(page, server.url, f'Axe {screen} {theme}')

    await page.goto(f'{server.url}/recorder')
    await page.get_by_test_id('record-button').wait_for()
    await audit.check('/recorder idle', targets=phone)
    await page.evaluate('Quasar.LoadingBar.start()')  # the bar NiceGUI shows while a page waits on the server
    await audit.check('/recorder, the loading bar')
    await page.evaluate('Quasar.LoadingBar.stop()')
    await page.get_by_test_id('record-button').click()
    await page.get_by_test_id('pause-button').wait_for()
    await audit.check('/recorder recording', targets=phone)
    await page.get_by_test_id('pause-button').click()
    await page.get_by_test_id('resume-button').wait_for()
    await page.get_by_test_id('resume-button').hover()  # where the pointer is after Pause: a hovered button's tint
    if not phone:  # Quasar tints a hovered button on a desktop, fading it in over 0.4 s
        await page.wait_for_function(HOVER_TINTED, arg=await page.get_by_test_id('resume-button').element_handle())
    await audit.check('/recorder paused', targets=phone)
    await page.get_by_test_id('stop-button').click()
    await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
    await audit.check('/recorder saved', targets=phone)

    await page.goto(f'{server.url}/records')
    await page.get_by_test_id('recording-toggle').first.click()  # the row open: its player, waveform and actions
    await page.get_by_test_id('player-play').first.wait_for()
    await page.get_by_test_id('favourite-toggle').first.click()  # starred and tagged: the filter chips show
    await page.get_by_test_id('favourite-toggle').and_(page.locator('[aria-pressed=true]')).wait_for()
    await page.get_by_test_id('tag-input').first.fill('Work')
    await page.get_by_test_id('tag-input').first.press('Enter')
    await page.get_by_test_id('filter-tag').wait_for()
    await page.get_by_test_id('tag-chip').wait_for()
    await audit.check('/records', targets=phone)
    await page.get_by_test_id('search-input').fill('nothing like this')
    await page.get_by_text('No recording has').wait_for()
    await audit.check('/records, a search that finds nothing')
    await page.get_by_test_id('search-input').fill('Recording')
    await page.get_by_test_id('player-play').first.wait_for()  # the row stays open as the list is drawn again
    await audit.check('/records, a search', targets=phone)

    await page.get_by_test_id('share-button').click()
    await page.get_by_test_id('create-share').click()
    await page.get_by_test_id('share-url').wait_for()
    await audit.check('/records, the share dialog', targets=phone)
    share_url = await page.get_by_test_id('share-url').input_value()
    await page.get_by_role('button', name='Close').click()
    await page.get_by_test_id('delete-button').click()
    await page.get_by_test_id('confirm-delete').wait_for()
    await audit.check('/records, the delete dialog', targets=phone)
    await page.get_by_role('button', name='Cancel').click()

    await page.goto(share_url)
    await page.get_by_test_id('audio-player').wait_for()
    await audit.check('the share page', targets=phone)
    await page.context.close()

    assert not audit.found, f'axe on {screen} in {theme} mode:\n{describe(audit.found)}'
    assert not audit.small, f'touch targets under 44×44 px: {audit.small}'


@pytest.mark.parametrize('theme', ['light', 'dark'])
async def test_the_keyboard_focus_is_visible(server: AppServer, browser: Browser, theme: str) -> None:
    page = await open_page(browser, 'desktop', theme)
    await page.goto(f'{server.url}/onboard')
    await page.get_by_test_id('onboard-submit').wait_for()
    seen = []
    for _ in range(5):  # the field (autofocused), Continue, the "another device" section, the page's end, the header
        await page.keyboard.press('Tab')
        seen.append(await page.evaluate(FOCUSED))
    await page.context.close()
    focused = [(element, outlined) for element, outlined in seen if not element.startswith('BODY')]
    assert len(focused) >= 3, f'the keyboard reaches too little: {seen}'
    assert all(outlined for _, outlined in focused), f'focus without a visible outline: {focused}'
