"""The list on /records in real Chromium: compact rows that open by mouse and keyboard, one player per recording with
our own controls and the waveform as its one seek bar (a slider for the keyboard), a title past the limit refused
with a count, a phone in dark mode, and a page left open past `VR_AUDIO_URL_EXPIRY_S` that still plays (the URL is
refreshed before it is used, or after a 403, at the same moment).

One app server and one browser serve the module; each case gets its own context."""

import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, Route

from tests.support.app_server import AppServer
from tests.support.audio_samples import split
from tests.support.browser import chromium, fake_microphone

pytestmark = [pytest.mark.xdist_group('records_list'), pytest.mark.asyncio(loop_scope='module')]

EXPIRY_S = 6  # short, so a test outlives the audio URLs it was given
TITLES = ['Standup', 'Dentist', 'Song idea', 'Lecture notes', 'Groceries', 'Call with Ana', 'Weekly notes']
PLAYER = '[data-recording-id="{id}"] [data-testid=audio-player]'


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(
        tmp_path_factory.mktemp('records-list') / 'data', env={'VR_AUDIO_URL_EXPIRY_S': str(EXPIRY_S)}
    ).start()
    yield running
    running.stop()
    running.assert_clean_log()


@pytest_asyncio.fixture(scope='module', loop_scope='module')
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    async with chromium(fake_microphone(tmp_path_factory.mktemp('mic'), seconds=2)) as launched:
        yield launched


async def signed_up(browser: Browser, server: AppServer, webm: bytes, **context: object) -> tuple[Page, list[str]]:
    """A new user with seven finished recordings (made over the REST API), on /records."""
    page = await (await browser.new_context(**context)).new_page()  # type: ignore[arg-type]
    await page.goto(f'{server.url}/onboard')
    await page.get_by_test_id('name-input').fill('Rowan')
    await page.get_by_test_id('onboard-submit').click()
    auth = {'Authorization': f'Bearer {await page.get_by_test_id("recovery-key").inner_text()}'}
    ids = []
    for title in TITLES:
        made = httpx.post(
            f'{server.url}/api/recordings', json={'mime_type': 'audio/webm', 'title': title}, headers=auth
        )
        recording_id = made.json()['id']
        for seq, piece in enumerate(split(webm, 16000)):
            httpx.put(f'{server.url}/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth)
        assert httpx.post(f'{server.url}/api/recordings/{recording_id}/finalize', headers=auth).status_code == 200
        ids.append(recording_id)
    await page.get_by_test_id('recovery-continue').click()
    await page.wait_for_url('**/records')
    await page.get_by_test_id('recording-item').nth(len(TITLES) - 1).wait_for()
    return page, ids[::-1]  # newest first, as the page lists them


async def playing_from(page: Page, recording_id: str, at_least: float) -> float:
    """Waits until the recording plays at or past `at_least` seconds; its position then."""
    player = PLAYER.format(id=recording_id)
    await page.wait_for_function(
        f'at => {{ const a = document.querySelector(`{player}`); return !a.paused && a.currentTime >= at; }}',
        arg=at_least,
        timeout=10_000,
    )
    return float(await page.locator(player).evaluate('a => a.currentTime'))


def expiry_of(url: str) -> int:
    return int(parse_qs(urlparse(url).query)['expires'][0])


async def test_rows_open_by_keyboard_and_play_with_our_controls(
    server: AppServer, browser: Browser, webm_5s: bytes
) -> None:
    page, ids = await signed_up(browser, server, webm_5s, viewport={'width': 1280, 'height': 800})
    rows = page.get_by_test_id('recording-item')
    assert await rows.count() == len(TITLES)
    sixth = await rows.nth(5).bounding_box()
    assert sixth is not None and sixth['y'] + sixth['height'] <= 800, 'six recordings fit a laptop screen'
    toggle = page.get_by_test_id('recording-toggle').first
    line = await toggle.bounding_box()
    assert line is not None and line['height'] < 60, 'title, date, length and state on one line'
    assert re.search(r'Weekly notes.*\d{4}-\d\d-\d\d \d\d:\d\d · 0:0[45]', await toggle.inner_text(), re.S)

    body = page.locator(f'#vr-body-{ids[0]}')
    assert not await body.is_visible()
    await toggle.focus()
    await page.keyboard.press('Enter')
    await body.wait_for()
    assert await toggle.get_attribute('aria-expanded') == 'true'
    await page.keyboard.press('Space')
    await body.wait_for(state='hidden')
    assert await toggle.get_attribute('aria-expanded') == 'false'
    await toggle.click()
    await body.wait_for()

    audio = page.locator(PLAYER.format(id=ids[0]))
    assert await audio.evaluate('a => a.controls') is False, 'no native scrubber beside the waveform'
    slider = body.get_by_role('slider')
    await slider.focus()
    await page.keyboard.press('End')
    assert float(await slider.get_attribute('aria-valuenow') or 0) >= 4
    await page.keyboard.press('Home')
    await page.keyboard.press('ArrowRight')  # 5 s on: the end of this recording
    assert float(await audio.evaluate('a => a.currentTime')) == pytest.approx(5, abs=0.3)
    await page.keyboard.press('ArrowLeft')
    assert float(await audio.evaluate('a => a.currentTime')) == pytest.approx(0, abs=0.3)
    assert await slider.get_attribute('aria-valuetext') == '0:00 of 0:05'

    await body.get_by_test_id('player-speed').click()
    assert await audio.evaluate('a => a.playbackRate') == 1.25
    await body.get_by_test_id('player-play').click()
    await playing_from(page, ids[0], 0.3)
    assert await body.get_by_test_id('player-play').get_attribute('aria-label') == 'Pause'
    await body.get_by_test_id('player-play').click()
    await page.wait_for_function(f'document.querySelector(`{PLAYER.format(id=ids[0])}`).paused')
    await body.get_by_test_id('player-back').click()
    assert float(await audio.evaluate('a => a.currentTime')) == 0
    await body.get_by_test_id('player-forward').click()
    assert float(await audio.evaluate('a => a.currentTime')) == pytest.approx(5, abs=0.3)
    for name in ('Rename', 'Download the original', 'Download as MP3', 'Share', 'Delete'):
        assert await body.get_by_role('button', name=name).count() == 1, name

    await a_title_past_the_limit_is_refused_with_its_count(page, body)
    await page.context.close()


async def a_title_past_the_limit_is_refused_with_its_count(page: Page, body: Locator) -> None:
    await body.get_by_test_id('rename-button').click()
    field = page.get_by_test_id('rename-input')
    await field.fill('x' * 201)
    counter = page.locator('.vr-title-count')
    await counter.get_by_text('201 / 200').wait_for()
    await page.get_by_test_id('rename-save').click()
    await page.get_by_text('The title is too long').wait_for()
    assert await field.input_value() == 'x' * 201, 'refused, not cut'
    await field.fill('Weekly notes, week 49')
    await counter.get_by_text('21 / 200').wait_for()
    await page.get_by_test_id('rename-save').click()
    await page.locator('.vr-recording-title', has_text='Weekly notes, week 49').wait_for()


async def test_a_page_left_open_past_the_url_lifetime_still_plays_from_the_same_moment(
    server: AppServer, browser: Browser, webm_5s: bytes
) -> None:
    page, ids = await signed_up(browser, server, webm_5s)
    first = page.locator(PLAYER.format(id=ids[0]))
    given = await first.get_attribute('src') or ''
    await page.get_by_test_id('recording-toggle').first.click()
    await first.evaluate('a => { a.currentTime = 2; }')  # the moment to resume at
    await page.wait_for_function(f'Date.now() / 1000 > {expiry_of(given) + 0.5}', timeout=(EXPIRY_S + 5) * 1000)
    assert httpx.get(f'{server.url}{given}').status_code == 403, 'the URL the page was given has expired'

    await page.get_by_test_id('player-play').first.click()
    position = await playing_from(page, ids[0], 2.0)
    assert 2.0 <= position < 3.5, 'resumed where it was'
    fresh = await first.evaluate('a => a.currentSrc')
    assert expiry_of(fresh) > expiry_of(given), 'played from a fresh URL'

    # A 403 (a URL that expired while the page was away, a clock that was off): the player asks again and plays.
    refused: list[str] = []

    async def refuse_once(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            await route.fulfill(status=403, body='expired')
        else:
            await route.continue_()

    second = PLAYER.format(id=ids[1])
    original = await page.locator(second).get_attribute('src')
    await page.route(f'**/api/recordings/{ids[1]}/audio?*', refuse_once)
    await page.locator(second).evaluate('(a, url) => { a.src = url; a.load(); }', original)
    await page.wait_for_function(
        f'() => {{ const a = document.querySelector(`{second}`); return a.src !== {original!r} && a.readyState >= 1; }}'
    )
    assert refused, 'the refused request was made, and the player asked for a fresh URL on its own'
    await page.get_by_test_id('recording-toggle').nth(1).click()
    await page.get_by_test_id('player-play').nth(1).click()
    await playing_from(page, ids[1], 0.2)
    await page.context.close()
