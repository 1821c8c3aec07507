"""2. Finalize: stop → playable for 1 to 180 minutes of opus stored as ~1-second chunks, per storage backend.

A backend is a set of Settings fields; another one (S3) plugs in as one more BACKENDS entry once it exists.
"""

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.audio import live_webm, split
from bench.report import Row
from bench.servers import BENCH_SECRET
from services.container import Services, build_services
from services.core.config import Settings

BACKENDS: dict[str, dict[str, Any]] = {'local': {}}
MINUTES = (1, 10, 60, 180)
QUICK_MINUTES = (1, 10)
NAIVE_MINUTES = (1, 10)
QUICK_NAIVE_MINUTES = (1,)
ROOT = Path(__file__).resolve().parent.parent


def settings_fields(workspace: Path, backend: str) -> dict[str, Any]:
    return {'data_dir': str(workspace / 'data'), 'secret': BENCH_SECRET, **BACKENDS[backend]}


def open_services(workspace: Path, backend: str = 'local') -> Services:
    return build_services(Settings(_env_file=None, **settings_fields(workspace, backend)))


def store_chunks(services: Services, workspace: Path, minutes: int, user_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    """A recording whose chunks went through the real chunk service, as if streamed live; not yet finalized."""
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm;codecs=opus', title=f'{minutes} min')
    chunks = split(live_webm(workspace, minutes * 60))
    for seq, data in enumerate(chunks):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=data)
    return recording.id, len(chunks)


def finalize_in_process(workspace: Path, backend: str, job: dict[str, Any]) -> dict[str, Any]:
    job = {**job, 'settings': settings_fields(workspace, backend)}
    command = [sys.executable, '-m', 'bench.finalize_worker', json.dumps(job)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f'finalize worker failed: {done.stderr[-3000:]}')
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    rows = []
    for backend in BACKENDS:
        services = open_services(workspace, backend)
        try:
            user_id = services.users.onboard(name=f'Finalize bench {backend}')[0].id
            for minutes in QUICK_MINUTES if quick else MINUTES:
                say(f'finalize: {minutes} min on {backend}, storing the chunks')
                rows += _one(workspace, services, backend, minutes, user_id, quick)
        finally:
            services.close()
    return rows


def _one(workspace: Path, services: Services, backend: str, minutes: int, user_id: uuid.UUID, quick: bool) -> list[Row]:
    recording_id, count = store_chunks(services, workspace, minutes, user_id)
    job = {'user_id': str(user_id), 'recording_id': str(recording_id), 'chunks': count}
    naive = None
    if minutes in (QUICK_NAIVE_MINUTES if quick else NAIVE_MINUTES):
        naive = finalize_in_process(workspace, backend, {**job, 'naive': True})
    real = finalize_in_process(workspace, backend, {**job, 'naive': False})
    (workspace / f'ready-{minutes}min.json').write_text(json.dumps(job))
    played = real['duration_ms'] / 1000
    grown = real['peak_mb'] - real['rss_before_mb']
    result = (
        f'**{real["seconds"]:.2f} s**; process peak {real["peak_mb"]:.0f} MB (+{grown:.0f} MB over its start), '
        f'ffmpeg peak {real["ffmpeg_peak_mb"]:.0f} MB'
    )
    baseline = 'naive path measured for 1 and 10 min only'
    if naive:
        baseline = (
            f'naive: {naive["seconds"]:.2f} s, process peak {naive["peak_mb"]:.0f} MB '
            f'(+{naive["peak_mb"] - naive["rss_before_mb"]:.0f} MB), ffmpeg peak {naive["ffmpeg_peak_mb"]:.0f} MB; '
            f'ours is {naive["seconds"] / real["seconds"]:.0f}× faster'
        )
    note = (
        f'{count} chunks; plays {played:.0f} s; of the time, {real["cleanup_seconds"]:.2f} s is deleting the chunks '
        'after the recording is already playable'
    )
    return [Row('2 finalize', f'{minutes} min, {backend}', result, baseline, note)]
