"""A real browser records through the real server, then plays the recording back and seeks in it.

Once on the embedded defaults, once as deployed: PostgreSQL, and S3 serving the audio to the browser directly.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.container import build_services
from services.core.config import Settings
from tests.conftest import settings_env
from tests.support.app_server import AppServer
from tests.support.audio_samples import split
from tests.support.browser import audio_metadata, chromium, fake_microphone, onboard, seek

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('browser')


@pytest.fixture(scope='module')
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fake_microphone(tmp_path_factory.mktemp('mic'), seconds=60)


@pytest.fixture
def app_server(settings: Settings) -> Iterator[AppServer]:
    server = AppServer(settings.data_dir, env=settings_env(settings)).start()
    yield server
    server.stop()


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local'), ('postgresql', 's3')], indirect=True)
async def test_record_stop_and_play_back_with_seeking(
    app_server: AppServer, settings: Settings, microphone: Path
) -> None:
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await onboard(page, app_server.url, 'Browser Tester')
        await page.goto(f'{app_server.url}/recorder')
        status = page.get_by_test_id('upload-status')
        await page.get_by_test_id('record-button').click()
        await page.get_by_test_id('pause-button').wait_for(state='visible')
        started = time.monotonic()
        await page.wait_for_timeout(2500)
        assert await status.inner_text() in ('All audio saved', 'Saving…')
        await page.wait_for_timeout(2500)
        before = time.monotonic() - started
        timer = await page.get_by_test_id('recording-timer').inner_text()
        after = time.monotonic() - started
        await page.get_by_test_id('stop-button').click()
        recorded_s = time.monotonic() - started
        # the clock shows the time that passed, within a second, however long a busy machine took to read it
        minutes, seconds = timer.split(':')
        assert int(before) - 1 <= int(minutes) * 60 + int(seconds) <= int(after) + 1, (timer, before, after)

        await page.get_by_test_id('saved-link').wait_for(timeout=20_000)
        assert await status.inner_text() == 'All audio saved'
        await page.get_by_test_id('record-button').wait_for(state='visible')
        await page.get_by_test_id('saved-link').click()
        await page.wait_for_url('**/records')
        await page.reload()

        item = page.get_by_test_id('recording-item')
        await item.first.wait_for()
        assert await item.count() == 1
        recording_id = await item.get_attribute('data-recording-id')
        assert recording_id
        player = item.get_by_test_id('audio-player')
        expected_origin = settings.s3_endpoint_url if settings.storage == 's3' else app_server.url
        assert (await player.evaluate('audio => new URL(audio.currentSrc).origin')) == expected_origin
        duration = await audio_metadata(page, recording_id)
        assert duration == pytest.approx(recorded_s, abs=1.0)
        assert await seek(page, recording_id, duration * 0.6) == pytest.approx(duration * 0.6, abs=0.1)
        assert 'Recording ' in await item.inner_text()

    services = build_services(settings)
    try:
        with services.database.session() as session:
            from services.core.models import Recording

            stored = session.get(Recording, uuid.UUID(recording_id))
        assert stored is not None
        assert stored.mime_type == 'audio/webm'
        assert stored.duration_ms == pytest.approx(duration * 1000, abs=100)
    finally:
        services.close()


# Escaping is the page's job: one deployment shows it.
@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)
async def test_names_and_titles_with_markup_are_shown_as_text_and_never_run(
    app_server: AppServer, microphone: Path, webm_5s: bytes
) -> None:
    name = '<img src=x onerror="window.xss=1">'
    title = '<script>window.xss=2</script><b>bold?</b>'
    async with chromium(microphone) as browser:
        page = await browser.new_page()
        await page.goto(f'{app_server.url}/onboard')
        await page.get_by_test_id('name-input').fill(name)
        await page.get_by_test_id('onboard-submit').click()
        key = await page.get_by_test_id('recovery-key').inner_text()
        auth = {'Authorization': f'Bearer {key}'}
        created = httpx.post(
            f'{app_server.url}/api/recordings', json={'mime_type': 'audio/webm', 'title': title}, headers=auth
        ).json()
        for seq, piece in enumerate(split(webm_5s, 8000)):
            httpx.put(f'{app_server.url}/api/recordings/{created["id"]}/chunks/{seq}', content=piece, headers=auth)
        httpx.post(f'{app_server.url}/api/recordings/{created["id"]}/finalize', headers=auth)
        await page.get_by_test_id('recovery-continue').click()
        await page.get_by_test_id('recording-item').wait_for()
        assert await page.get_by_text(title).count() == 1  # shown literally
        assert await page.get_by_text(name).count() >= 1
        assert await page.locator('.vr-card b').count() == 0  # no markup was rendered
        assert await page.evaluate('window.xss') is None
