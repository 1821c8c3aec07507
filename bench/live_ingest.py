"""9. Live transcripts beside ingest, through the real app: 4 live recordings while 100 recorders send their chunks.

The app runs as users run it (embedded full-pass workers and the live worker, Whisper base). Each live recording is a
REST client doing what the recorder page does: it asks for live words, sends a 1-second chunk of real speech each
second (bench/live.py's streams) and reads the new words every 0.25 s as the page does; a word's delay runs from its
end in the audio to the read that first returned it. The 100 recorders are the ingest benchmark's (bench/ingest.py);
their chunk acknowledgements are measured alone first, then with the live recordings beside them, in the same run,
on the same pages.
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from bench import identities, live
from bench.audio import live_webm, split
from bench.load import LoadResult, count_lost, with_and_without
from bench.report import Row, median, percentile
from bench.servers import app_server, cpu_seconds, pid_of
from services.transcripts.models import BUNDLED_MODELS, DEFAULT_MODEL, load_model, model_folder

LIVE_RECORDINGS = 4
RECORDERS = 100
POLL_S = 0.25
WARM_UP_S = 10  # the recorders' first seconds on a fresh server, not measured (bench/background.py)


class LiveClient:
    """One live recording, sent and read as the recorder page does."""

    def __init__(self, base_url: str, recording: live.Recording, name: str) -> None:
        self.api = httpx.Client(base_url=base_url, timeout=30)
        token = self.api.post('/api/onboard', json={'name': name}).json()['token']
        self.api.headers['Authorization'] = f'Bearer {token}'
        self.recording = recording
        self.id = self.api.post('/api/recordings', json={'mime_type': 'audio/webm'}).json()['id']
        asked = self.api.post(f'/api/recordings/{self.id}/live').json()
        assert asked['state'] == 'waiting', asked
        self.commits: list[tuple[float, str]] = []
        self.busy = False
        self.started = 0.0

    def run(self, started: float, done: threading.Event) -> None:
        self.started = started
        reader = threading.Thread(target=self._read, args=(done,), daemon=True)
        reader.start()
        headers = {'Content-Type': 'application/octet-stream'}
        for k, chunk in enumerate(self.recording.chunks):
            time.sleep(max(0.0, started + k + 1 - time.monotonic()))
            self.api.put(f'/api/recordings/{self.id}/chunks/{k}', content=chunk, headers=headers).raise_for_status()
        reader.join()

    def _read(self, done: threading.Event) -> None:
        after = -1
        while not done.wait(POLL_S):
            answer = self.api.get(f'/api/recordings/{self.id}/live', params={'after': after}).json()
            now = time.monotonic()
            self.busy = self.busy or answer['busy']
            for piece in answer['pieces']:
                after = piece['seq']
                self.commits += [(now, live.token(word)) for word in piece['text'].split() if live.token(word)]

    def delays(self) -> tuple[list[float], int]:
        found = live.matches(self.recording.reference, self.commits)
        return [at - (self.started + end_ms / 1000) for end_ms, at in found], len(found)


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    seconds = live.QUICK_STREAM_S if quick else live.STREAM_S
    say('live beside ingest: making the live recordings and their reference words')
    model = load_model(model_folder(BUNDLED_MODELS[DEFAULT_MODEL], workspace / 'models'))
    recordings = [live.recording(workspace, i, seconds, model) for i in range(LIVE_RECORDINGS)]
    del model
    chunks = split(live_webm(workspace, WARM_UP_S + 2 * seconds + 10))
    browsers = identities.ensure(workspace, RECORDERS)
    server = app_server(workspace, VR_TRANSCRIBE='true').start(timeout=120)
    beside_them = _LiveRecordings(server.url, pid_of(server), recordings)

    def start_live() -> None:
        say(f'live beside ingest: the same with {LIVE_RECORDINGS} live recordings')
        beside_them.start()

    try:
        say(f'live beside ingest: {RECORDERS} recorder pages, {WARM_UP_S} s warming up, then {seconds} s alone')
        alone, beside = with_and_without(
            server.url, pid_of(server), identities=browsers, chunks=chunks, warm_up_s=WARM_UP_S, window_s=seconds,
            change=start_live,
        )  # fmt: skip
        live_cpu = beside_them.finish(seconds)
    finally:
        server.kill()
    lost = count_lost(workspace, alone.acked_seqs) + count_lost(workspace, beside.acked_seqs)
    return [_row(alone, beside, beside_them.clients, live_cpu, lost)]


class _LiveRecordings:
    """The live recordings, started as the second window is about to (the recorders' pages stay open through both
    windows: opening 100 of them afresh set off full garbage collections in the window, bench/results.md)."""

    def __init__(self, base_url: str, app_pid: int, recordings: list[live.Recording]) -> None:
        self.base_url, self.app_pid, self.recordings = base_url, app_pid, recordings
        self.clients: list[LiveClient] = []
        self.threads: list[threading.Thread] = []
        self.done = threading.Event()

    def start(self) -> None:
        self.clients = [LiveClient(self.base_url, r, f'Live bench {i}') for i, r in enumerate(self.recordings)]
        self.worker = live_worker_of(self.app_pid)
        self.cpu_before = cpu_seconds(self.worker)
        self.started = time.monotonic() + 1.0  # with the window (run_windows starts it a second after this)
        self.threads = [
            threading.Thread(target=client.run, args=(self.started + i / len(self.clients), self.done), daemon=True)
            for i, client in enumerate(self.clients)
        ]
        for thread in self.threads:
            thread.start()

    def finish(self, seconds: float) -> float:
        """Once the last words have had their time: the live worker's CPU seconds meanwhile."""
        time.sleep(max(0.0, self.started + seconds + live.GRACE_S / 2 - time.monotonic()))
        self.done.set()
        for thread in self.threads:
            thread.join()
        return cpu_seconds(self.worker) - self.cpu_before


def live_worker_of(app_pid: int) -> psutil.Process:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(app_pid).children():
            if '--live' in child.cmdline():
                return child
        time.sleep(0.2)
    raise RuntimeError('the app started no live worker')


def _row(alone: LoadResult, beside: LoadResult, clients: list[LiveClient], live_cpu: float, lost: int) -> Row:
    delays: list[float] = []
    matched = reference = 0
    for client in clients:
        found, count = client.delays()
        delays += found
        matched, reference = matched + count, reference + len(client.recording.reference)
    audio_s = sum(client.recording.seconds for client in clients)
    busy = sum(client.busy for client in clients)
    return Row(
        '9 live beside ingest',
        f'{RECORDERS} recorders × 1 chunk/s + {LIVE_RECORDINGS} live recordings (Whisper base, embedded workers)',
        f'ingest p50 {beside.p50_ms:.1f} / p99 **{beside.p99_ms:.0f} ms**; live delay p50 **{median(delays):.1f} s**, '
        f'p95 **{percentile(delays, 0.95):.1f} s** (as read by the page, every {POLL_S:g} s); **{lost} lost**',
        f'the same recorders alone: p50 {alone.p50_ms:.1f} / p99 {alone.p99_ms:.0f} ms',
        f'live worker {live_cpu / audio_s:.2f} CPU-s per audio-s; '
        f'words matched {100 * matched / max(1, reference):.0f} % of {reference}; '
        f'{busy} of {len(clients)} paused as busy; '
        f'server CPU {beside.server_cpu_pct:.0f} % (alone {alone.server_cpu_pct:.0f} %)',
    )
