"""11. Background work never starves recording: chunk acknowledgements of 200 recorders with the workers idle, then
busy, in one run, for each `VR_BACKGROUND_PRIORITY` (core/priority.py) in turn.

Busy: recordings of speech sent through the REST API just before, so the transcript workers (Whisper base, one per
core) have a queue for the whole window, and their MP3 copies asked for while the recorders send (encodes in the web
process's ffmpeg children); every finished recording also gets its waveform. The recorders are the ingest
benchmark's (bench/ingest.py), the same identities in every case.
"""

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx

from bench import identities
from bench.audio import live_webm, split
from bench.day import api_user, speech_chunks, upload
from bench.load import LoadResult, count_lost, run_load
from bench.report import Row
from bench.servers import app_server, pid_of, total_cpu_seconds, workers_of
from services.core.priority import BackgroundPriority

RECORDERS = 200
WINDOW_S, QUICK_WINDOW_S = 120, 45
# The same load first, not measured, so that both windows run on a warm server: a fresh server's first second
# answered in up to 387 ms (10-20 ms after it), which made the idle window's p99.
WARM_UP_S = 10
BUSY_RECORDINGS = 4
BUSY_MINUTES = 10  # each: its transcript takes a worker longer than the window
PRIORITIES: tuple[BackgroundPriority, ...] = ('normal', 'low', 'idle')


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> Iterator[Row]:
    window = QUICK_WINDOW_S if quick else WINDOW_S
    noise = split(live_webm(workspace, window + 60))
    speech = speech_chunks(workspace, BUSY_MINUTES * 60)
    browsers = identities.ensure(workspace, RECORDERS)
    for priority in ('idle',) if quick else PRIORITIES:
        server = app_server(workspace, VR_TRANSCRIBE='true', VR_BACKGROUND_PRIORITY=priority).start(timeout=180)
        try:
            load = partial(run_load, server.url, pid_of(server), bare=False, identities=browsers, chunks=noise)
            say(f'background ({priority}): warming up for {WARM_UP_S} s')
            load(duration_s=WARM_UP_S)
            say(f'background ({priority}): {RECORDERS} recorders, the workers idle, {window} s')
            idle = load(duration_s=window)
            say(f'background ({priority}): queueing {BUSY_RECORDINGS} transcripts of {BUSY_MINUTES} min')
            api = api_user(server.url, f'Background {priority}')
            ids = [upload(api, speech, seconds_per_chunk=30) for _ in range(BUSY_RECORDINGS)]
            workers = workers_of(pid_of(server))
            before = total_cpu_seconds(workers)
            exports = [threading.Thread(target=api.post, args=(f'/api/recordings/{i}/mp3',)) for i in ids]
            for thread in exports:
                thread.start()
            say(f'background ({priority}): the same recorders, the workers busy, {window} s')
            busy = load(duration_s=window)
            worker_cpu = total_cpu_seconds(workers) - before
            for thread in exports:
                thread.join(timeout=300)
            still_queued = _unfinished(api, ids)
        finally:
            server.kill()
        lost = count_lost(workspace, idle.acked_seqs) + count_lost(workspace, busy.acked_seqs)
        yield _row(priority, idle, busy, worker_cpu / window, still_queued, lost)


def _unfinished(api: httpx.Client, ids: list[str]) -> int:
    """Transcripts not done when the window ended: more than zero means the workers had work all along."""
    states = [api.get(f'/api/recordings/{i}/transcript').json().get('state') for i in ids]
    return sum(state != 'done' for state in states)


def _row(priority: str, idle: LoadResult, busy: LoadResult, worker_share: float, still_queued: int, lost: int) -> Row:
    ratio = busy.p99_ms / max(idle.p99_ms, 0.1)
    return Row(
        '11 background',
        f'{RECORDERS} recorders × 1 chunk/s, workers busy (VR_BACKGROUND_PRIORITY={priority})',
        f'ingest p50 {busy.p50_ms:.1f} / p99 **{busy.p99_ms:.0f} ms** (**{ratio:.2f}×** idle); **{lost} lost**',
        f'the workers idle: p50 {idle.p50_ms:.1f} / p99 {idle.p99_ms:.0f} ms',
        f'goal: ≤ 1.5× idle; workers {100 * worker_share:.0f} % of one core meanwhile, {still_queued} of '
        f'{BUSY_RECORDINGS} transcripts still to do at the end; web process {busy.server_cpu_pct:.0f} % '
        f'(idle {idle.server_cpu_pct:.0f} %); {busy.failed} unacknowledged; generator {busy.generator_cpu_pct:.0f} %',
    )
