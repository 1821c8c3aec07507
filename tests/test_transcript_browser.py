"""A real browser records speech, then reads its transcript on /records: a click on a word plays from there, and a
search for a spoken word that is not in the title finds the recording with the word highlighted."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app_server import AppServer
from tests.support.browser import chromium, fake_microphone, onboard

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('transcript_browser')

SENTENCE = 'Please remember to buy apples, bread and cheese tomorrow morning.'


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('spoken-mic'), text=SENTENCE)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppServer]:
    # with its embedded transcription worker, as a user runs it
    running = AppServer(tmp_path / 'data', env={'VR_TRANSCRIBE': 'true'}).start()
    yield running
    running.stop()


async def test_a_spoken_word_plays_from_its_moment_and_finds_its_recording(server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, server.url, 'Listener')
        await page.goto(f'{server.url}/recorder')
        await page.get_by_test_id('record-button').click()
        await page.wait_for_timeout(6500)
        await page.get_by_test_id('stop-button').click()
        await page.get_by_test_id('saved-link').wait_for(timeout=60_000)

        await page.goto(f'{server.url}/records')
        words = page.locator('.vr-word')
        deadline = time.monotonic() + 120
        while await words.count() == 0:  # the worker transcribes in the background; the card looks again itself
            assert time.monotonic() < deadline, await page.locator('[data-testid=recording-item]').inner_text()
            await page.wait_for_timeout(1000)
        spoken = ' '.join(await words.all_inner_texts()).lower()
        shown = await page.locator('.vr-transcript-text').first.inner_text()
        assert shown.lower().split() == spoken.split(), shown  # the words read apart, as spoken
        assert 'cheese' in spoken and 'apples' in spoken, spoken

        word = words.filter(has_text='cheese').first
        start_s = int(await word.get_attribute('data-start') or 0) / 1000
        assert start_s > 0.5
        await word.click()
        player = page.locator('[data-testid=recording-item] audio')
        await page.wait_for_function(
            'start => { const a = document.querySelector("[data-testid=recording-item] audio"); '
            'return a && !a.paused && a.currentTime >= start; }',
            arg=start_s,
            timeout=10_000,
        )
        position = float(await player.evaluate('audio => audio.currentTime'))
        assert start_s <= position < start_s + 1.5
        await page.wait_for_selector('.vr-word--current', timeout=5_000)  # the word being spoken is highlighted

        await page.get_by_test_id('search-input').fill('cheese')
        snippet = page.locator('.vr-snippet')
        await snippet.first.wait_for(timeout=10_000)
        assert (await snippet.first.locator('mark').all_inner_texts())[0].lower().startswith('chees')
        assert 'cheese' not in (await page.locator('.vr-recording-title').first.inner_text()).lower()
