"""Nothing a user recorded is lost: a dropped network, a reloaded tab, a killed server, failing storage.

Each test drives real headless Chromium with a fake microphone playing known speech against the real
server, then checks the saved recording's length against the wall clock and its sound against the source.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Dialog, Page

from services.config import Settings
from services.container import Services, build_services
from services.models import Recording, RecordingStatus
from services.recordings import audio_key

from .app_server import AppServer
from .audio_compare import similarity_by_segment
from .audio_samples import speech_wav
from .browser import chromium, onboard
from .tcp_proxy import TcpProxy

SECRET = 'browser-test-secret'


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_wav(tmp_path_factory.mktemp('mic') / 'speech-60s.wav', 60.0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / 'data'


@pytest.fixture
def stored(data_dir: Path) -> Iterator[Services]:
    services = build_services(Settings(_env_file=None, data_dir=data_dir, secret=SECRET))
    yield services
    services.close()


def ready_recordings(services: Services) -> list[Recording]:
    with services.database.session() as session:
        from sqlmodel import select

        return list(session.exec(select(Recording)).all())


async def start_recording(page: Page, base_url: str) -> float:
    await page.goto(f'{base_url}/recorder')
    await page.get_by_test_id('record-button').click()
    await page.get_by_test_id('stop-button').wait_for(state='visible')
    await page.wait_for_function('document.querySelector("[data-testid=recording-timer]").textContent !== "00:00"')
    return time.monotonic() - 1.0


async def stop_and_wait_until_saved(page: Page) -> float:
    await page.get_by_test_id('stop-button').click()
    stopped = time.monotonic()
    await page.get_by_test_id('saved-link').wait_for(timeout=60_000)
    return stopped


def assert_saved_audio(
    services: Services, recorded_s: float, microphone: Path, tmp_path: Path, tolerance_s: float = 1.5
) -> Recording:
    recordings = ready_recordings(services)
    assert len(recordings) == 1, [(r.status, r.duration_ms) for r in recordings]
    recording = recordings[0]
    assert recording.status == RecordingStatus.READY, recording.error
    assert recording.duration_ms is not None
    assert recording.duration_ms / 1000 == pytest.approx(recorded_s, abs=tolerance_s)
    saved = tmp_path / 'saved.webm'
    with saved.open('wb') as handle:
        services.storage.copy_to(audio_key(recording), handle)
    scores = similarity_by_segment(saved, microphone)
    print(
        f'recorded {recorded_s:.2f} s, saved {recording.duration_ms / 1000:.2f} s, '
        f'similarity per 5 s: {[round(score, 2) for score in scores]}'
    )
    assert len(scores) >= int(recorded_s // 5) - 1
    assert min(scores) > 0.6, f'a stretch of the saved audio does not match the microphone: {scores}'
    return recording


@pytest.fixture
def proxy(data_dir: Path) -> Iterator[TcpProxy]:
    """The real app behind a loopback proxy that can cut the network."""
    server = AppServer(data_dir).start()
    cable = TcpProxy(server.port)
    yield cable
    cable.close()
    server.stop()


async def test_a_60_second_style_network_drop_loses_nothing(
    proxy: TcpProxy, stored: Services, microphone: Path, tmp_path: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, proxy.url, 'Offline Olivia')
        started = await start_recording(page, proxy.url)
        await page.wait_for_timeout(10_000)
        proxy.block()
        status = page.get_by_test_id('upload-status')
        await page.wait_for_function(
            'document.querySelector("[data-testid=upload-status]").textContent.startsWith("Offline – ")',
            timeout=15_000,
        )
        await page.wait_for_timeout(20_000 - 8_000)
        offline_text = await status.inner_text()
        assert offline_text.startswith('Offline – ')
        assert int(offline_text.split('–')[1].split()[0]) >= 10
        proxy.unblock()
        await page.wait_for_function(
            'document.querySelector("[data-testid=upload-status]").textContent === "All audio saved"',
            timeout=30_000,
        )
        remaining = 40 - (time.monotonic() - started)
        await page.wait_for_timeout(max(0, remaining) * 1000)
        stopped = await stop_and_wait_until_saved(page)
    assert_saved_audio(stored, stopped - started, microphone, tmp_path)


async def test_a_reloaded_tab_keeps_what_was_recorded(
    data_dir: Path, stored: Services, microphone: Path, tmp_path: Path
) -> None:
    server = AppServer(data_dir).start()
    try:
        async with chromium(microphone) as browser:
            page = await browser.new_page()
            dialogs: list[str] = []

            async def leave_anyway(dialog: Dialog) -> None:  # the warning before leaving unsaved audio → "leave"
                dialogs.append(dialog.type)
                await dialog.accept()

            page.on('dialog', leave_anyway)
            await onboard(page, server.url, 'Reloading Rui')
            started = await start_recording(page, server.url)
            await page.wait_for_timeout(10_000)
            reloaded = time.monotonic()
            await page.reload()
            await page.get_by_text('Recovered recording').first.wait_for(timeout=30_000)  # status line and toast
            assert dialogs == ['beforeunload'], 'leaving while recording must ask first'
    finally:
        server.stop()
    assert_saved_audio(stored, reloaded - started, microphone, tmp_path)


async def test_a_killed_and_restarted_server_loses_nothing(
    data_dir: Path, stored: Services, microphone: Path, tmp_path: Path
) -> None:
    server = AppServer(data_dir).start()
    try:
        async with chromium(microphone) as browser:
            page = await browser.new_page()
            await onboard(page, server.url, 'Crashing Cleo')
            started = await start_recording(page, server.url)
            await page.wait_for_timeout(10_000)
            killed = time.monotonic()
            server.kill()
            server.start()
            await page.wait_for_timeout(max(0, 10 - (time.monotonic() - killed)) * 1000)
            stopped = await stop_and_wait_until_saved(page)
    finally:
        server.stop()
    assert_saved_audio(stored, stopped - started, microphone, tmp_path)


async def test_failing_storage_is_retried_until_it_recovers(
    data_dir: Path, stored: Services, microphone: Path, tmp_path: Path
) -> None:
    switch = tmp_path / 'storage-down'
    server = AppServer(data_dir, script='tests/fault_app.py', env={'VR_TEST_FAULT_SWITCH': str(switch)}).start()
    try:
        async with chromium(microphone) as browser:
            page = await browser.new_page()
            await onboard(page, server.url, 'Flaky Fatou')
            started = await start_recording(page, server.url)
            await page.wait_for_timeout(5_000)
            switch.touch()
            await page.wait_for_function(
                'document.querySelector("[data-testid=upload-status]").textContent.includes("storage is unavailable")',
                timeout=10_000,
            )
            await page.wait_for_timeout(4_000)
            switch.unlink()
            await page.wait_for_timeout(5_000)
            stopped = await stop_and_wait_until_saved(page)
    finally:
        server.stop()
    assert_saved_audio(stored, stopped - started, microphone, tmp_path)


async def test_stop_pressed_while_offline_saves_once_back_online(
    proxy: TcpProxy, stored: Services, microphone: Path, tmp_path: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, proxy.url, 'Stopping Sven')
        started = await start_recording(page, proxy.url)
        await page.wait_for_timeout(4_000)
        proxy.block()
        await page.wait_for_timeout(4_000)
        await page.get_by_test_id('stop-button').click()
        stopped = time.monotonic()
        await page.get_by_test_id('record-button').wait_for(state='hidden')
        await page.wait_for_timeout(3_000)
        assert 'waiting to upload' in await page.get_by_test_id('upload-status').inner_text()
        proxy.unblock()
        await page.get_by_test_id('saved-link').wait_for(timeout=60_000)
    assert_saved_audio(stored, stopped - started, microphone, tmp_path)
