"""Two app instances behind a real load balancer (HAProxy with the deploy guide's `docs/haproxy.cfg`), sharing one
PostgreSQL, one bucket and one Redis: an instance dies under a recording browser, and the user loses nothing.
"""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import BrowserContext, Page

from services.container import Services
from services.core.config import Settings
from services.recordings.service import recording_prefix
from tests.conftest import settings_env, stored_keys
from tests.support.app_server import ROOT, AppServer, stop_process
from tests.support.browser import audio_metadata, chromium, fake_microphone, onboard
from tests.support.load_balancer import COOKIE, LoadBalancer
from tests.support.redis_server import RedisServer
from tests.test_loss import (
    assert_saved_audio,
    ready_recordings,
    start_recording,
    stop_and_wait_until_saved,
    wait_for_status,
)

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('load_balancer')

BACKENDS = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('postgresql', 's3')], indirect=True)


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=40)


@contextmanager
def behind_haproxy(tmp_path: Path, settings: Settings, redis_url: str, **extra: str) -> Iterator[LoadBalancer]:
    """Two instances with the same settings, each with its own data folder, behind HAProxy."""
    env = {k: v for k, v in settings_env(settings).items() if k != 'VR_DATA_DIR'}
    env.update(NICEGUI_REDIS_URL=redis_url, VR_TRUSTED_PROXY_COUNT='1', **extra)

    def instance(name: str) -> AppServer:  # nothing shared on disk, as on two machines: not even NiceGUI's folder
        return AppServer(
            tmp_path / name / 'data', env={**env, 'NICEGUI_STORAGE_PATH': str(tmp_path / name / 'nicegui')}
        )

    apps = (instance('app1'), instance('app2'))
    balancer = LoadBalancer(apps, tmp_path / 'haproxy.log')
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(AppServer.start, apps))
        yield balancer.start()
    finally:
        balancer.stop()
        for app in apps:
            app.stop()


@pytest.fixture
def balancer(tmp_path: Path, settings: Settings, redis_url: str) -> Iterator[LoadBalancer]:
    # No transcription workers: two of them beside a browser would crowd two cores, and this is not about words.
    with behind_haproxy(tmp_path, settings, redis_url, VR_TRANSCRIBE='false') as balanced:
        yield balanced


# What the status line says from now on, with the milliseconds since: the test prints what a user saw.
WATCH_STATUS = """() => {
    const status = document.querySelector('[data-testid=upload-status]');
    const t0 = performance.now();
    window.vrStatusLog = [];
    new MutationObserver(() => {
        const text = status.textContent;
        const last = window.vrStatusLog.at(-1);
        if (!last || last[1] !== text) window.vrStatusLog.push([Math.round(performance.now() - t0), text]);
    }).observe(status, {childList: true, characterData: true, subtree: true});
}"""


async def sticky_instance(context: BrowserContext) -> str:
    """The instance the load balancer's cookie sends this browser to: app1 or app2."""
    (value,) = [cookie['value'] for cookie in await context.cookies() if cookie['name'] == COOKIE]
    return value


async def delete_through_the_page(page: Page, base_url: str, recording_id: str) -> None:
    await page.goto(f'{base_url}/records')
    card = page.locator(f'[data-recording-id="{recording_id}"]')
    await card.get_by_test_id('recording-toggle').click()  # the row opens to its actions
    await card.get_by_test_id('delete-button').click()
    await page.get_by_test_id('confirm-delete').click()
    await card.wait_for(state='detached')


@BACKENDS
async def test_a_recording_survives_the_death_of_the_instance_the_browser_is_stuck_to(
    balancer: LoadBalancer,
    services: Services,
    redis_server: RedisServer,
    microphone: Path,
    tmp_path: Path,
) -> None:
    lb = balancer
    async with chromium(microphone) as browser:
        context = await browser.new_context()
        page = await context.new_page()
        console: list[str] = []
        page.on('console', lambda message: console.append(message.text))
        await onboard(page, lb.url, 'Roaming Rosa')
        started = await start_recording(page, lb.url)
        await page.wait_for_timeout(10_000)

        stuck_to = await sticky_instance(context)
        assert set(lb.served_by()[1:]) == {stuck_to}, 'after its first request, the browser only met one instance'
        await page.evaluate(WATCH_STATUS)
        lb.apps[stuck_to].kill()
        await page.wait_for_timeout(10_000)
        # Ten seconds on, the audio is flowing to the other instance: nothing waits in the browser.
        await wait_for_status(page, 'All audio saved', timeout_ms=5_000)
        print(f'{stuck_to} killed; the status line since:', await page.evaluate('window.vrStatusLog'))
        assert not await page.get_by_text('Connection lost.').is_visible(), 'no "Connection lost" beside it'
        moved_to = await sticky_instance(context)
        assert moved_to != stuck_to, 'the load balancer moved the browser, and its cookie says so'
        stopped = await stop_and_wait_until_saved(page)
        # The page's NiceGUI client died with its instance; once the audio is saved the page reloads on the other
        # one, still signed in (user storage in Redis), and shows what was saved.
        assert page.url.startswith(f'{lb.url}/recorder?saved='), page.url
        assert 'keeping the page: audio is still being recorded or uploaded' in console
        assert redis_server.keys('nicegui:user-*'), 'where the other instance learnt who the browser is'
        recording = assert_saved_audio(services, stopped - started, microphone, tmp_path)
        recording_id = str(recording.id)

        await page.goto(f'{lb.url}/records')
        player = page.locator(f'[data-recording-id="{recording_id}"] [data-testid="audio-player"]')
        assert await audio_metadata(page, recording_id) == pytest.approx(recording.duration_ms / 1000, abs=0.5)
        audio_url = await player.get_attribute('src')
        assert audio_url
        whole = httpx.get(audio_url, timeout=30)
        part = httpx.get(audio_url, headers={'Range': 'bytes=0-999'}, timeout=30)
        assert (whole.status_code, part.status_code, part.content) == (200, 206, whole.content[:1000])

        await delete_through_the_page(page, lb.url, recording_id)
    deadline = time.monotonic() + 20
    while ready_recordings(services) and time.monotonic() < deadline:  # deleted once the undo window has passed
        await asyncio.sleep(0.5)
    assert ready_recordings(services) == []
    assert stored_keys(services.storage, recording_prefix(uuid.UUID(recording_id))) == []
    survivor = lb.apps['app2' if stuck_to == 'app1' else 'app1']
    assert 'Traceback' not in survivor.log(), survivor.log()


@contextmanager
def live_worker_elsewhere(tmp_path: Path, settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """`python main.py worker --live` as on a machine of its own: its own data folder, the shared database and bucket,
    Whisper tiny.en (English speech; half base's CPU)."""
    env = {**os.environ, **settings_env(settings), 'VR_DATA_DIR': str(tmp_path / 'worker' / 'data')}
    # `low`: under SCHED_IDLE the live worker would get only the CPU the rest of the suite leaves
    env.update(VR_TRANSCRIBE='true', VR_TRANSCRIBE_MODEL='tiny.en', VR_LIVE_THREADS='1', VR_BACKGROUND_PRIORITY='low')
    log_path = tmp_path / 'live-worker.log'
    with log_path.open('ab') as log:
        worker = subprocess.Popen(
            [sys.executable, 'main.py', 'worker', '--live'], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while 'live worker' not in log_path.read_text() or 'ready' not in log_path.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield worker
    finally:
        stop_process(worker)


@BACKENDS
async def test_live_words_heard_on_another_machine_reach_the_page_behind_the_balancer(
    tmp_path: Path, settings: Settings, redis_url: str
) -> None:
    microphone = fake_microphone(tmp_path, text='Please remember to buy apples, bread and cheese tomorrow morning.')
    # The instances run no worker of their own (external): the words can only come from the other machine.
    balanced = behind_haproxy(tmp_path, settings, redis_url, VR_TRANSCRIBE='true', VR_TRANSCRIBE_WORKER='external')
    with balanced as lb, live_worker_elsewhere(tmp_path, settings):
        async with chromium(microphone) as browser:
            page = await browser.new_page()
            await onboard(page, lb.url, 'Distant Dana')
            await start_recording(page, lb.url)
            live = await page.get_by_test_id('live-transcript').element_handle()
            await page.wait_for_function('el => /apples|cheese|bread/i.test(el.textContent)', arg=live, timeout=45_000)
            assert await page.get_by_test_id('stop-button').is_visible(), 'the words came only after Stop'
            await stop_and_wait_until_saved(page)
