"""3. Playback: time to first byte of a recording's signed audio URL, from the start and after a seek to 95 %."""

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.finalize import finalize_in_process, open_services, store_chunks
from bench.report import Row, median, percentile
from bench.servers import BaselineServer, app_server
from services.recordings.service import recording_audio_key

REQUESTS = 30
QUICK_REQUESTS = 10


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    minutes, job = _ready_recording(workspace, 10 if quick else 60, say)
    services = open_services(workspace)
    try:
        recording = services.recordings.get(
            user_id=uuid.UUID(job['user_id']), recording_id=uuid.UUID(job['recording_id'])
        )
        path = workspace / 'static-audio.webm'
        with path.open('wb') as copy:
            size = services.storage.copy_to(recording_audio_key(recording), copy)
        signed = services.links.url(recording)  # what the records page puts in the <audio> tag
    finally:
        services.close()
    count = QUICK_REQUESTS if quick else REQUESTS
    seek = f'bytes={int(size * 0.95)}-'
    say(f'playback: {count} requests each, {minutes}-minute recording ({size / 1e6:.0f} MB)')
    server = app_server(workspace).start()
    try:
        ours = {name: _ttfb(server.url + signed, header, count) for name, header in (('start', None), ('seek', seek))}
    finally:
        server.stop()
    static = BaselineServer(workspace, 'static_server', '--file', str(path)).start()
    try:
        base = {name: _ttfb(static.url + '/audio', h, count) for name, h in (('start', None), ('seek', seek))}
    finally:
        static.stop()
    return [
        _row(f'first byte, {minutes}-min recording', ours['start'], base['start']),
        _row(f'first byte after Range seek to 95 % ({seek})', ours['seek'], base['seek']),
    ]


def _ready_recording(workspace: Path, minutes: int, say: Callable[[str], None]) -> tuple[int, dict[str, str]]:
    """The finalize benchmark's recording of that length, or a new one made the same way."""
    path = workspace / f'ready-{minutes}min.json'
    if not path.exists():
        say(f'playback: making a {minutes}-minute recording')
        services = open_services(workspace)
        try:
            user_id = services.users.onboard(name='Playback bench')[0].id
            recording_id, count = store_chunks(services, workspace, minutes, user_id)
        finally:
            services.close()
        job = {'user_id': str(user_id), 'recording_id': str(recording_id), 'chunks': count}
        finalize_in_process(workspace, 'local', {**job, 'naive': False})
        path.write_text(json.dumps(job))
    return minutes, json.loads(path.read_text())


def _ttfb(url: str, range_header: str | None, count: int) -> list[float]:
    """Milliseconds from sending the request to the first body bytes, on a new connection each time."""
    headers = {'Range': range_header} if range_header else {}
    times = []
    for _ in range(count):
        with httpx.Client(timeout=30) as client:
            started = time.perf_counter()
            with client.stream('GET', url, headers=headers) as response:
                next(response.iter_raw())
                times.append((time.perf_counter() - started) * 1000)
                expected = 206 if range_header else 200
                if response.status_code != expected:
                    raise RuntimeError(f'GET {url} answered {response.status_code}, expected {expected}')
    return times


def _row(case: str, ours: list[float], base: list[float]) -> Row:
    return Row(
        '3 playback',
        case,
        f'median **{median(ours):.1f} ms**, p95 {percentile(ours, 0.95):.1f} ms',
        f'static file (starlette FileResponse): median {median(base):.1f} ms, p95 {percentile(base, 0.95):.1f} ms',
        f'{median(ours) / median(base):.1f}× the static file; goal ≤ 50 ms',
    )
