"""A real browser records speech: its words appear on /recorder while it speaks, and the full transcript replaces them
after Stop; then it reads the transcript on /records: a click on a word plays from there, and a search for a spoken
word that is not in the title finds the recording with the word highlighted."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app_server import AppServer
from tests.support.browser import chromium, fake_microphone, onboard
from tests.test_recorder_ux import screenshot

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('transcript_browser')

SENTENCE = 'Please remember to buy apples, bread and cheese tomorrow morning.'


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('spoken-mic'), text=SENTENCE)


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """With its embedded workers, as a user runs it: one full-pass worker and the live worker (two full-pass workers
    would only share the cores with the live one), on tiny.en, half base's CPU (the words are English)."""
    # `low`: the suite keeps both cores busy, and under SCHED_IDLE the workers would get only what the other tests
    # leave (test_transcripts.py checks the default, SCHED_IDLE)
    env = {
        'VR_TRANSCRIBE': 'true',
        'VR_TRANSCRIBE_WORKERS': '1',
        'VR_TRANSCRIBE_MODEL': 'tiny.en',
        'VR_BACKGROUND_PRIORITY': 'low',
    }
    running = AppServer(tmp_path_factory.mktemp('transcripts') / 'data', env=env).start()
    yield running
    running.stop()
    running.assert_clean_log()


async def test_a_spoken_word_plays_from_its_moment_and_finds_its_recording(server: AppServer, microphone: Path) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, server.url, 'Listener')
        await page.goto(f'{server.url}/recorder')
        days = {time.strftime('%Y-%m-%d', time.gmtime())}  # the recording's day, even if it starts at midnight
        await page.get_by_test_id('record-button').click()
        await page.wait_for_timeout(6500)
        await page.get_by_test_id('stop-button').click()
        days.add(time.strftime('%Y-%m-%d', time.gmtime()))
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
        title = page.locator('.vr-recording-title').first  # the recorder's default title gives way to the words
        await page.wait_for_function(
            'el => el.textContent.startsWith("Please remember")', arg=await title.element_handle(), timeout=10_000
        )
        title_text = (await title.inner_text()).strip()
        assert 'morning' not in title_text.lower(), title_text  # cut at a word within 60 characters

        await page.get_by_test_id('recording-toggle').first.click()  # the row opens to its transcript
        async with page.expect_download() as download:  # named after its title and day
            await page.get_by_test_id('download-link').first.click()
        assert (await download.value).suggested_filename in {f'{title_text} – {day}.webm' for day in days}
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

        await page.get_by_text('Account').click()  # the language and vocabulary, for the README's screenshot
        await page.get_by_test_id('vocabulary-input').fill('Priya Venkataraman\nZanzibar')
        await page.get_by_test_id('vocabulary-count').wait_for()
        await page.set_viewport_size({'width': 1280, 'height': 1100})  # the page scrolls inside its layout
        await page.wait_for_timeout(800)  # the section's opening animation
        await screenshot(page, 'records-transcript')

        await page.get_by_test_id('search-input').fill('morning')  # spoken, and not in the title
        snippet = page.locator('.vr-snippet')
        await snippet.first.wait_for(timeout=10_000)
        assert (await snippet.first.locator('mark').all_inner_texts())[0].lower().startswith('morning')


async def test_spoken_words_appear_while_recording_and_the_full_transcript_replaces_them(
    server: AppServer, microphone: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, server.url, 'Live Listener')
        await page.goto(f'{server.url}/recorder')
        assert await page.get_by_test_id('live-toggle').get_attribute('aria-checked') == 'true'  # on by default
        await page.get_by_test_id('record-button').click()
        live = page.get_by_test_id('live-transcript')
        await page.wait_for_function(  # the sentence loops in the fake microphone: its words come within seconds
            'el => /apples|cheese|bread/i.test(el.textContent)', arg=await live.element_handle(), timeout=45_000
        )
        assert await page.get_by_test_id('stop-button').is_visible(), 'the words came only after Stop'
        heard_live = (await live.inner_text()).lower()
        await screenshot(page, 'live-transcript')  # for the README (`make screenshots`)
        await page.get_by_test_id('stop-button').click()
        await page.get_by_test_id('saved-link').wait_for(timeout=60_000)
        await page.wait_for_function(  # the full pass's words replace the live draft
            'el => el.textContent === "Transcript"',
            arg=await page.get_by_test_id('live-state').element_handle(),
            timeout=120_000,
        )
        final = (await live.inner_text()).lower()
        assert 'cheese' in final or 'apples' in final, final
        print(f'live: {heard_live!r}; full: {final!r}')
