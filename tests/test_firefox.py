"""Firefox ESR records through the real server, plays the recording back and seeks in it, and loses nothing
when the network drops mid-recording.

Firefox writes its own WebM (not Chromium's), so the recorder, the finalize remux and playback are checked on
it end to end. It is driven over WebDriver BiDi (`tests/support/firefox.py`); its fake microphone is a ~1 kHz tone.
"""

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from services.audio.ffmpeg import ffmpeg_executable
from services.container import Services, build_services
from services.core.config import Settings
from services.core.models import Recording, RecordingStatus
from services.recordings.service import recording_audio_key
from tests.support.app_server import AppServer
from tests.support.audio_samples import WEBM_MAGIC
from tests.support.firefox import Firefox, firefox
from tests.support.tcp_proxy import TcpProxy

SECRET = 'browser-test-secret-of-at-least-32-chars'  # AppServer's
TONE_RATE = 8000


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / 'data'


@pytest.fixture
def stored(data_dir: Path) -> Iterator[Services]:
    services = build_services(Settings(_env_file=None, data_dir=data_dir, secret=SECRET))
    yield services
    services.close()


@pytest.fixture
def server(data_dir: Path) -> Iterator[AppServer]:
    running = AppServer(data_dir).start()
    yield running
    running.stop()


@pytest.fixture
def proxy(server: AppServer) -> Iterator[TcpProxy]:
    cable = TcpProxy(server.port)
    yield cable
    cable.close()


async def click(browser: Firefox, test_id: str) -> None:
    await browser.wait_for(f'document.querySelector("[data-testid={test_id}]")')
    await browser.evaluate(f'document.querySelector("[data-testid={test_id}]").click()')


async def fill(browser: Firefox, test_id: str, text: str) -> None:
    """Quasar's input (Vue's v-model) takes a value set on the native input once an `input` event follows."""
    await browser.wait_for(f'document.querySelector("[data-testid={test_id}]")')
    await browser.call(
        """(testId, text) => {
            const input = document.querySelector(`[data-testid=${testId}]`);
            input.value = text;
            input.dispatchEvent(new Event('input', {bubbles: true}));
        }""",
        test_id,
        text,
    )


async def status_text(browser: Firefox) -> str:
    return str(await browser.evaluate('document.querySelector("[data-testid=upload-status]").textContent'))


async def onboard(browser: Firefox, base_url: str, name: str) -> None:
    await browser.navigate(f'{base_url}/recorder')
    await browser.wait_for('location.pathname === "/onboard"')
    await fill(browser, 'name-input', name)
    await click(browser, 'onboard-submit')
    await click(browser, 'recovery-continue')
    await browser.wait_for('location.pathname === "/records"')


async def start_recording(browser: Firefox, base_url: str) -> float:
    await browser.navigate(f'{base_url}/recorder')
    await click(browser, 'record-button')
    await browser.wait_for('document.querySelector(".vr-recorder").dataset.vrState === "recording"', poll_s=0.02)
    return time.monotonic()


async def stop_and_wait_until_saved(browser: Firefox) -> float:
    await click(browser, 'stop-button')
    stopped = time.monotonic()
    await browser.wait_for('document.querySelector("[data-testid=saved-link]")', timeout_s=60)
    return stopped


PLAYER = 'document.querySelector("[data-testid=audio-player]")'


async def played_duration(browser: Firefox) -> float:
    """The duration Firefox itself reads from the `<audio>` element once its metadata has loaded."""
    return float(
        await browser.evaluate(f"""new Promise((resolve, reject) => {{
            const audio = {PLAYER};
            if (audio.readyState >= 1) return resolve(audio.duration);
            audio.addEventListener('loadedmetadata', () => resolve(audio.duration), {{once: true}});
            audio.addEventListener('error', () => reject(new Error('audio failed to load')), {{once: true}});
        }})""")
    )


async def seek(browser: Firefox, seconds: float) -> float:
    return float(
        await browser.call(
            f"""target => new Promise(resolve => {{
                const audio = {PLAYER};
                audio.addEventListener('seeked', () => resolve(audio.currentTime), {{once: true}});
                audio.currentTime = target;
            }})""",
            seconds,
        )
    )


def the_recording(services: Services) -> Recording:
    with services.database.session() as session:
        recordings = list(session.exec(select(Recording)).all())
    assert len(recordings) == 1, [(r.status, r.duration_ms) for r in recordings]
    assert recordings[0].status == RecordingStatus.READY, recordings[0].error
    return recordings[0]


def seconds_of_tone(services: Services, recording: Recording, tmp_path: Path) -> list[float]:
    """Per whole second of the stored file: the dominant frequency in Hz (0 where it is silent)."""
    saved = tmp_path / 'saved.webm'
    with saved.open('wb') as handle:
        services.storage.copy_to(recording_audio_key(recording), handle)
    assert saved.read_bytes()[:4] == WEBM_MAGIC
    pcm = subprocess.run(
        [ffmpeg_executable(), '-v', 'error', '-i', str(saved), '-ac', '1', '-ar', str(TONE_RATE), '-f', 's16le', '-'],
        check=True,
        capture_output=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    frequencies = []
    for second in range(len(samples) // TONE_RATE):
        window = samples[second * TONE_RATE : (second + 1) * TONE_RATE]
        loud = np.sqrt((window**2).mean()) > 300
        frequencies.append(float(np.argmax(np.abs(np.fft.rfft(window)))) if loud else 0.0)  # 1 Hz bins
    return frequencies


def assert_continuous_tone(services: Services, recording: Recording, tmp_path: Path) -> None:
    """Firefox's fake microphone is a steady ~1 kHz tone: every second of the file must hold it, no silent gap."""
    frequencies = seconds_of_tone(services, recording, tmp_path)
    print(f'dominant frequency per second: {frequencies}')
    assert frequencies, 'the stored file decodes to no audio'
    assert all(900 <= hz <= 1100 for hz in frequencies), frequencies


async def test_firefox_records_plays_back_and_seeks(
    server: AppServer, stored: Services, tmp_path: Path, record_s: float = 8.0
) -> None:
    async with firefox() as browser:
        await onboard(browser, server.url, 'Firefox Fiona')
        started = await start_recording(browser, server.url)
        await asyncio.sleep(record_s - (time.monotonic() - started))
        assert await status_text(browser) in ('All audio saved', 'Saving…')
        assert await browser.evaluate('document.querySelector("[data-testid=screen-hint]")') is None  # a wake lock
        stopped = await stop_and_wait_until_saved(browser)
        assert await status_text(browser) == 'All audio saved'
        recorded_s = stopped - started

        await browser.navigate(f'{server.url}/records')
        await browser.wait_for(PLAYER)
        assert await browser.evaluate('document.querySelectorAll("[data-testid=recording-item]").length') == 1
        duration = await played_duration(browser)
        print(f'recorded {recorded_s:.2f} s, Firefox plays {duration:.2f} s')
        assert duration == pytest.approx(recorded_s, abs=1.5)
        assert await seek(browser, duration * 0.6) == pytest.approx(duration * 0.6, abs=0.1)

    recording = the_recording(stored)
    assert recording.mime_type == 'audio/webm'
    assert recording.duration_ms == pytest.approx(duration * 1000, abs=100)
    assert_continuous_tone(stored, recording, tmp_path)


async def test_firefox_loses_nothing_when_the_network_drops_mid_recording(
    proxy: TcpProxy, stored: Services, tmp_path: Path
) -> None:
    async with firefox() as browser:
        await onboard(browser, proxy.url, 'Offline Firefox')
        started = await start_recording(browser, proxy.url)
        await asyncio.sleep(4)
        proxy.block()
        cut = time.monotonic()
        await browser.wait_for(
            'document.querySelector("[data-testid=upload-status]").textContent.startsWith("Offline")'
        )
        await asyncio.sleep(8 - (time.monotonic() - cut))
        offline_text = await status_text(browser)
        assert offline_text.startswith('Offline – '), offline_text
        assert int(offline_text.split('–')[1].split()[0]) >= 5, offline_text
        proxy.unblock()
        await browser.wait_for(
            'document.querySelector("[data-testid=upload-status]").textContent === "All audio saved"', timeout_s=30
        )
        await asyncio.sleep(3)
        stopped = await stop_and_wait_until_saved(browser)

    recording = the_recording(stored)
    recorded_s = stopped - started
    assert recording.duration_ms is not None
    print(f'recorded {recorded_s:.2f} s (8 s of it offline), saved {recording.duration_ms / 1000:.2f} s')
    assert recording.duration_ms / 1000 == pytest.approx(recorded_s, abs=1.5)
    assert_continuous_tone(stored, recording, tmp_path)
