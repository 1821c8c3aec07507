"""Importing files in real Chromium (issue 24): two files dropped on the page import at once, each with its card; a
network cut mid-import pauses it and it resumes without sending stored chunks again; after a reload, choosing the
same file again resumes it from what the server holds.

The records page of one app server behind a loopback proxy that can cut the network, and one browser, for the
whole module.
"""

import base64
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from services.audio.ffmpeg import ffmpeg_executable
from tests.support.app_server import AppServer
from tests.support.axe import axe_source, describe, serious_violations
from tests.support.browser import chromium, onboard
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.xdist_group('import_browser')
CHUNK = 16 * 1024  # small chunks: a long upload from a small file


@pytest.fixture(scope='module')
def files(speech_5s: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('import-files')
    made = {'speech.mp3': ['-i', str(speech_5s), '-c:a', 'libmp3lame', '-b:a', '48k']}
    made['long tone.mp3'] = [
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:duration=480',
        '-c:a',
        'libmp3lame',
        '-b:a',
        '64k',
    ]
    for name, options in made.items():
        subprocess.run([ffmpeg_executable(), '-v', 'error', '-y', *options, str(folder / name)], check=True)
    (folder / 'speech.wav').write_bytes(speech_5s.read_bytes())
    (folder / 'notes.txt').write_text('not audio')
    return {name.name: name for name in folder.iterdir()}


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {'VR_MAX_CHUNK_BYTES': str(CHUNK)}
    running = AppServer(tmp_path_factory.mktemp('imports') / 'data', env=env)
    running.start()
    yield running
    running.stop()
    running.assert_clean_log()


@pytest.fixture(scope='module')
def cable(server: AppServer) -> Iterator[TcpProxy]:
    proxy = TcpProxy(server.port)
    yield proxy
    proxy.close()


def saved_recordings(server: AppServer) -> list[tuple[str, int]]:
    with sqlite3.connect(server.data_dir / 'voice-recorder.db') as database:
        query = "SELECT title, duration_ms FROM recording WHERE status IN ('READY', 'READY_OPEN')"  # enum names
        return list(database.execute(query))


def stored_chunks(server: AppServer) -> int:
    with sqlite3.connect(server.data_dir / 'voice-recorder.db') as database:
        return int(database.execute('SELECT count(*) FROM chunk').fetchone()[0])


COUNT_SENT_CHUNKS = """() => {
  window.sentSeqs = [];
  const count = (socket) => {
    if (socket.counted) return socket;
    const emit = socket.emit.bind(socket);
    socket.emit = (event, payload, ...rest) => {
      if (event === 'chunk') window.sentSeqs.push(payload.seq);
      return emit(event, payload, ...rest);
    };
    socket.counted = true;
    return socket;
  };
  const manager = window.socket.io;  // the /vr socket is made by the page, with its token: wrap it when it is
  if (manager.nsps['/vr']) count(manager.nsps['/vr']);
  const make = manager.socket.bind(manager);
  manager.socket = (namespace, options) => {
    const made = make(namespace, options);
    return namespace === '/vr' ? count(made) : made;
  };
}"""
DROP = """async ([files]) => {
  const transfer = new DataTransfer();
  for (const [name, type, data] of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type, lastModified: Date.UTC(2023, 0, 2) }));
  }
  document.body.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
}"""


async def card_state(page: Page, title: str, state: str, timeout_s: float = 60) -> str:
    """Waits until the card of `title` is in `state`; returns its progress text."""
    card = page.locator('[data-testid=import-card]', has=page.get_by_text(title, exact=True))
    deadline = time.monotonic() + timeout_s
    while await card.get_attribute('data-state') != state:
        assert time.monotonic() < deadline, f'{title}: {await card.inner_text()}'
        await page.wait_for_timeout(100)
    return await card.get_by_test_id('import-progress').inner_text()


async def sent_fraction(page: Page, title: str) -> float:
    card = page.locator('[data-testid=import-card]', has=page.get_by_text(title, exact=True))
    return int(await card.get_by_role('progressbar').get_attribute('aria-valuenow') or 0) / 100


async def two_dropped_files_import_at_once_each_with_its_card(
    page: Page, files: dict[str, Path], server: AppServer
) -> None:
    dropped = [
        [name, mime, base64.b64encode(files[name].read_bytes()).decode()]
        for name, mime in (('speech.mp3', 'audio/mpeg'), ('speech.wav', 'audio/wav'))
    ]
    await page.evaluate(DROP, [dropped])
    cards = page.get_by_test_id('import-card')
    await cards.nth(1).wait_for()
    assert await cards.count() == 2
    deadline = time.monotonic() + 60
    while [await card.get_attribute('data-state') for card in await cards.all()] != ['done', 'done']:
        assert time.monotonic() < deadline, await cards.all_inner_texts()
        await page.wait_for_timeout(100)
    saved = saved_recordings(server)
    assert len(saved) == 2, saved
    for title, duration_ms in saved:  # titled by the file's name, as long as the file
        assert title == 'speech' and abs(duration_ms - 5000) <= 500, saved
    await page.get_by_test_id('recording-item').nth(1).wait_for()  # and the list shows both


async def a_network_cut_pauses_the_import_and_it_resumes_without_resending(
    page: Page, files: dict[str, Path], cable: TcpProxy, server: AppServer
) -> None:
    await page.evaluate(COUNT_SENT_CHUNKS)
    await page.get_by_test_id('import-input').set_input_files(files['long tone.mp3'])
    total = -(-files['long tone.mp3'].stat().st_size // CHUNK)
    await card_state(page, 'long tone', 'uploading')
    while await sent_fraction(page, 'long tone') < 0.1:
        await page.wait_for_timeout(50)
    cable.block()
    shown = await card_state(page, 'long tone', 'paused', timeout_s=20)
    assert 'Paused' in shown and ' of ' in shown, shown
    stored_during_cut = stored_chunks(server)
    assert 0 < stored_during_cut < total
    cable.unblock()
    await card_state(page, 'long tone', 'done', timeout_s=120)
    sent = await page.evaluate('() => window.sentSeqs')
    assert sorted(set(sent)) == list(range(total)), 'every chunk was sent'
    assert len(sent) - total <= 4, 'only chunks whose answer the cut lost are sent again (at most 4 are in flight)'


async def after_a_reload_choosing_the_same_file_resumes_it(
    page: Page, files: dict[str, Path], server: AppServer
) -> None:
    tone = files['long tone.mp3']
    await page.get_by_test_id('import-input').set_input_files(tone)
    total = -(-tone.stat().st_size // CHUNK)
    await card_state(page, 'long tone', 'uploading')
    while await sent_fraction(page, 'long tone') < 0.2:
        await page.wait_for_timeout(50)
    await page.reload()
    shown = await card_state(page, 'long tone', 'interrupted')
    assert 'choose the same file again' in shown, shown
    stored_at_reload = stored_chunks(server)
    assert stored_at_reload >= 0.2 * total
    await page.evaluate(COUNT_SENT_CHUNKS)
    await page.get_by_test_id('import-input').set_input_files(tone)
    await card_state(page, 'long tone', 'done', timeout_s=120)
    sent = await page.evaluate('() => window.sentSeqs')
    # chunks in flight at the reload may land after it was counted: those are not sent again either
    assert len(set(sent)) == len(sent) <= total - stored_at_reload, 'only what the server did not hold was sent'


async def test_importing_files_in_a_real_browser(
    cable: TcpProxy, server: AppServer, files: dict[str, Path], speech_5s: Path
) -> None:
    """One browser and one sign-in for the three stories, in order."""
    async with chromium(speech_5s) as browser:
        page = await browser.new_page()
        await onboard(page, cable.url, 'Importer')
        await page.goto(f'{cable.url}/records')
        await two_dropped_files_import_at_once_each_with_its_card(page, files, server)
        await a_network_cut_pauses_the_import_and_it_resumes_without_resending(page, files, cable, server)
        await after_a_reload_choosing_the_same_file_resumes_it(page, files, server)
        await every_card_state_passes_axe(page, files)


async def every_card_state_passes_axe(page: Page, files: dict[str, Path]) -> None:
    """Cards done, interrupted (after a reload) and refused, in light and dark: no serious axe violation."""
    await page.reload()
    await page.get_by_test_id('import-input').set_input_files(files['notes.txt'])
    shown = await card_state(page, 'notes', 'refused')
    assert shown.startswith('This file cannot be imported: choose MP3'), shown
    source = axe_source()
    for dark in (False, True):
        await page.emulate_media(color_scheme='dark' if dark else 'light')
        await page.wait_for_function(f'document.body.classList.contains("body--dark") === {str(dark).lower()}')
        # the colours change with a transition: axe reads them once it has ended
        await page.wait_for_function('document.getAnimations().every(a => a.playState !== "running")')
        violations = await serious_violations(page, source)
        assert not violations, describe({'dark' if dark else 'light': violations})
