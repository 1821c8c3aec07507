"""Imports: a long MP3 sent as a script or the browser sends it (chunks over the REST API, at most 4 waiting for
their acknowledgement), then finalized; beside it, the same bytes as one plain HTTP upload.

The web process's memory is sampled throughout (every 5 ms): an import reads one chunk at a time, so its peak
growth must stay small whatever the file's length.
"""

import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.report import Row
from bench.servers import BaselineServer, PeakRss, app_server, pid_of
from services.audio.ffmpeg import ffmpeg_executable

MINUTES = (60, 180)
QUICK_MINUTES = (10,)
BLOCK_MINUTES = 10  # encoded once; longer files are byte-concatenated blocks (MP3 frames stand alone)
CHUNK = 512 * 1024  # VR_MAX_CHUNK_BYTES's default
IN_FLIGHT = 4  # as the browser's upload session
MB = 1e6


def make_mp3(workspace: Path, minutes: int) -> Path:
    block = workspace / 'block.mp3'
    if not block.exists():
        tone = f'sine=frequency=220:sample_rate=44100:duration={BLOCK_MINUTES * 60}'
        options = ['-c:a', 'libmp3lame', '-b:a', '64k', '-ac', '1', '-id3v2_version', '0', '-write_xing', '0']
        command = [ffmpeg_executable(), '-v', 'error', '-y', '-f', 'lavfi', '-i', tone, *options, '-f', 'mp3']
        subprocess.run([*command, str(block)], check=True)
    target = workspace / f'{minutes}-min.mp3'
    with target.open('wb') as out:
        for _ in range(minutes // BLOCK_MINUTES):
            out.write(block.read_bytes())
    return target


def send_chunks(http: httpx.Client, auth: dict[str, str], recording_id: str, path: Path) -> None:
    """Each chunk read from the file only when it is sent, as the browser slices its File."""
    size = path.stat().st_size

    def put(seq: int) -> None:
        with path.open('rb') as handle:
            handle.seek(seq * CHUNK)
            data = handle.read(CHUNK)
        for _attempt in range(20):
            answer = http.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=data, headers=auth)
            if answer.status_code == 200:
                return
            time.sleep(0.25)
        raise RuntimeError(f'chunk {seq}: {answer.status_code} {answer.text}')

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(put, range(-(-size // CHUNK))))


def import_once(base_url: str, path: Path) -> tuple[float, float, int]:
    """Upload seconds, finalize seconds, and the stored duration in ms."""
    with httpx.Client(base_url=base_url, timeout=1800) as http:
        token = http.post('/api/onboard', json={'name': 'Import bench'}).json()['token']
        auth = {'Authorization': f'Bearer {token}'}
        body = {'mime_type': 'audio/mpeg', 'title': path.stem, 'file_size_bytes': path.stat().st_size}
        recording_id = http.post('/api/recordings', json=body, headers=auth).json()['id']
        started = time.perf_counter()
        send_chunks(http, auth, recording_id, path)
        uploaded = time.perf_counter()
        ready = http.post(f'/api/recordings/{recording_id}/finalize', headers=auth)
        ready.raise_for_status()
        return uploaded - started, time.perf_counter() - uploaded, int(ready.json()['duration_ms'])


def plain_upload_seconds(workspace: Path, path: Path) -> float:
    folder = workspace / 'plain-upload'
    folder.mkdir(exist_ok=True)
    server = BaselineServer(workspace, 'upload_server', '--folder', str(folder)).start()
    try:
        started = time.perf_counter()

        def pieces() -> Iterator[bytes]:
            with path.open('rb') as handle:
                while data := handle.read(CHUNK):
                    yield data

        httpx.put(f'{server.url}/upload', content=pieces(), timeout=1800).raise_for_status()
        return time.perf_counter() - started
    finally:
        server.stop()


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> Iterator[Row]:
    for minutes in QUICK_MINUTES if quick else MINUTES:
        say(f'imports: a {minutes}-minute MP3')
        path = make_mp3(workspace, minutes)
        size_mb = path.stat().st_size / MB
        server = app_server(workspace, workspace / f'import-{minutes}' / 'data').start()
        try:
            with PeakRss(pid_of(server)) as memory:
                upload_s, finalize_s, duration_ms = import_once(server.url, path)
        finally:
            server.stop()
        baseline_s = plain_upload_seconds(workspace, path)
        yield Row(
            'imports',
            f'{minutes}-min MP3 ({size_mb:.0f} MB), REST chunks of 512 KiB, 4 in flight',
            f'**{size_mb / upload_s:.1f} MB/s** upload ({upload_s:.1f} s), finalize {finalize_s:.1f} s; web process '
            f'RSS {memory.start_mb:.0f} → peak {memory.peak_mb:.0f} MB (**+{memory.peak_mb - memory.start_mb:.0f} MB**)'
            f', ffmpeg {memory.children_peak_mb:.0f} MB',
            f'one plain HTTP upload: {size_mb / baseline_s:.1f} MB/s ({baseline_s:.1f} s)',
            f'stored length {duration_ms / 60_000:.1f} min',
        )
