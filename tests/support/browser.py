"""Real headless Chromium (Debian's package) whose fake microphone plays a known WAV (see `fake_microphone`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

from tests.support.audio_samples import require, speech_wav, spoken_wav

CHROMIUM_FLAGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
]


def fake_microphone(folder: Path, *, seconds: float | None = None, text: str | None = None) -> Path:
    """The WAV for Chromium's fake microphone: `seconds` of the stock speech, or `text` spoken once."""
    if text is not None and seconds is None:
        return spoken_wav(text, folder / 'spoken.wav')
    if seconds is not None and text is None:
        return speech_wav(folder / f'speech-{seconds:g}s.wav', seconds)
    raise ValueError('a fake microphone plays either `seconds` of speech or a `text`')


@asynccontextmanager
async def chromium(microphone_wav: Path, *, allow_microphone: bool = True) -> AsyncIterator[Browser]:
    """Without `allow_microphone` the permission prompt is not auto-accepted, so headless Chromium denies it."""
    executable = require('chromium')
    flags = [flag for flag in CHROMIUM_FLAGS if allow_microphone or flag != '--use-fake-ui-for-media-stream']
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*flags, f'--use-file-for-fake-audio-capture={microphone_wav}'],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def onboard(page: Page, base_url: str, name: str) -> None:
    await page.goto(f'{base_url}/recorder')
    await page.wait_for_url('**/onboard')
    await page.get_by_test_id('name-input').fill(name)
    await page.get_by_test_id('onboard-submit').click()
    await page.get_by_test_id('recovery-continue').click()
    await page.wait_for_url('**/records')


async def audio_metadata(page: Page, recording_id: str) -> float:
    """The duration the browser itself reads from the `<audio>` element, once its metadata has loaded."""
    player = page.locator(f'[data-recording-id="{recording_id}"] [data-testid="audio-player"]')
    return float(
        await player.evaluate(
            """audio => new Promise((resolve, reject) => {
             if (audio.readyState >= 1) return resolve(audio.duration);
             audio.addEventListener('loadedmetadata', () => resolve(audio.duration), {once: true});
             audio.addEventListener('error', () => reject(new Error('audio failed to load')), {once: true});
           })"""
        )
    )


async def seek(page: Page, recording_id: str, seconds: float) -> float:
    player = page.locator(f'[data-recording-id="{recording_id}"] [data-testid="audio-player"]')
    return float(
        await player.evaluate(
            """(audio, target) => new Promise(resolve => {
             audio.addEventListener('seeked', () => resolve(audio.currentTime), {once: true});
             audio.currentTime = target;
           })""",
            seconds,
        )
    )
