"""Safari's ways in a real browser: Chromium made to record `audio/mp4` (Opus in fragmented MP4, the container
Safari uses) records, finalizes and plays back with seeking; and a recorder that ignores the timeslice and hands
over all its audio at Stop, as Safari may, still saves everything and says so while recording.

No app change picks the type: an init script makes `MediaRecorder.isTypeSupported` refuse WebM and Ogg, as a
browser without them would, so the recorder falls through its list to `audio/mp4`.
"""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from services.container import build_services
from services.core.config import Settings
from services.core.models import Recording
from services.recordings.service import recording_audio_key
from tests.support.app_server import AppServer
from tests.support.browser import audio_metadata, chromium, fake_microphone, onboard, seek
from tests.test_safari_format import box_order

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('mp4')

SECRET = 'browser-test-secret-of-at-least-32-chars'  # AppServer's
ONLY_MP4 = """(() => {
    const supported = MediaRecorder.isTypeSupported.bind(MediaRecorder);
    MediaRecorder.isTypeSupported = (type) => type.startsWith('audio/mp4') && supported(type);
})()"""
TIMESLICE_IGNORED = """(() => {
    const start = MediaRecorder.prototype.start;
    MediaRecorder.prototype.start = function () { return start.call(this); };
})()"""


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=20)


def only_recording(data_dir: Path, tmp_path: Path) -> tuple[Recording, bytes]:
    """The one recording in the app's database, and its stored audio."""
    services = build_services(Settings(_env_file=None, data_dir=data_dir, secret=SECRET))
    try:
        with services.database.session() as session:
            (recording,) = session.exec(select(Recording)).all()
        saved = tmp_path / 'saved.m4a'
        with saved.open('wb') as handle:
            services.storage.copy_to(recording_audio_key(recording), handle)
    finally:
        services.close()
    return recording, saved.read_bytes()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppServer]:
    running = AppServer(tmp_path / 'data').start()
    yield running
    running.stop()


async def test_chromium_recording_mp4_finalizes_and_plays_back_with_seeking(
    server: AppServer, microphone: Path, tmp_path: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await page.add_init_script(ONLY_MP4)
        await onboard(page, server.url, 'MP4 Mia')
        await page.goto(f'{server.url}/recorder')
        await page.get_by_test_id('record-button').click()
        await page.get_by_test_id('pause-button').wait_for(state='visible')
        started = time.monotonic()
        await page.wait_for_timeout(6000)
        await page.get_by_test_id('stop-button').click()
        recorded_s = time.monotonic() - started
        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        assert await page.get_by_test_id('upload-status').inner_text() == 'All audio saved'

        await page.goto(f'{server.url}/records')
        item = page.get_by_test_id('recording-item')
        await item.first.wait_for()
        recording_id = await item.first.get_attribute('data-recording-id')
        assert recording_id
        duration = await audio_metadata(page, recording_id)
        print(f'recorded {recorded_s:.2f} s, Chromium plays {duration:.2f} s')
        assert duration == pytest.approx(recorded_s, abs=1.5)
        assert await seek(page, recording_id, duration * 0.6) == pytest.approx(duration * 0.6, abs=0.1)

    stored, audio = only_recording(tmp_path / 'data', tmp_path)
    assert str(stored.id) == recording_id
    assert stored.mime_type == 'audio/mp4'
    order = box_order(audio)
    assert order.index('moov') < order.index('mdat'), order  # the index first: playable while it downloads


async def test_a_recorder_that_delivers_only_at_stop_saves_everything_and_says_so(
    tmp_path: Path, microphone: Path
) -> None:
    server = AppServer(tmp_path / 'data', env={'VR_MAX_CHUNK_BYTES': '16384'}).start()  # the Stop blob is split
    try:
        async with chromium(microphone) as browser:
            page = await browser.new_page()
            await page.add_init_script(ONLY_MP4)
            await page.add_init_script(TIMESLICE_IGNORED)
            await onboard(page, server.url, 'Safari Sol')
            await page.goto(f'{server.url}/recorder')
            started = time.monotonic()  # before the click: recording starts after it, however late the page shows it
            await page.get_by_test_id('record-button').click()
            await page.get_by_test_id('pause-button').wait_for(state='visible')
            status = page.get_by_test_id('upload-status')
            await status.get_by_text('only when you press Stop').wait_for(timeout=6000)
            assert await status.inner_text() == (
                'This browser saves the audio only when you press Stop, so keep this page open until then'
            )
            assert time.monotonic() - started >= 3, 'said only once three timeslices passed without audio'
            await page.wait_for_timeout(8000 - (time.monotonic() - started) * 1000)
            await page.get_by_test_id('stop-button').click()
            recorded_s = time.monotonic() - started
            await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
            assert await status.inner_text() == 'All audio saved'
    finally:
        server.stop()
    chunks = [int(n) for n in re.findall(r'finalized recording \S+: (\d+) chunks', server.log())]
    recording, _audio = only_recording(tmp_path / 'data', tmp_path)
    assert recording.duration_ms is not None
    print(f'recorded {recorded_s:.2f} s, sent at Stop as {chunks} chunks, saved {recording.duration_ms / 1000:.2f} s')
    assert len(chunks) == 1 and chunks[0] >= 2, 'the one large chunk from Stop went as several pieces'
    assert recording.duration_ms / 1000 == pytest.approx(recorded_s, abs=1.5)
