"""11. Background work never starves recording: chunk acknowledgements of 200 recorders with the workers idle, then
busy, in one run, for each `VR_BACKGROUND_PRIORITY` (core/priority.py) in turn.

Busy: recordings of speech sent through the REST API just before, so the transcript workers (Whisper base, one per
core) have a queue for the whole window, and their MP3 copies asked for while the recorders send (encodes in the web
process's ffmpeg children); every finished recording also gets its waveform. The recorders are the ingest
benchmark's (bench/ingest.py), the same identities in every case. They open their pages once and keep recording on
them through a warm-up and both windows, as a recorder does while work starts on the server: 200 pages opened afresh
for each window made each window's p99 one full collection of the heap they grew (bench/results.md).
"""

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import identities
from bench.audio import live_webm, split
from bench.day import api_user, speech_chunks, upload
from bench.load import LoadResult, count_lost, with_and_without
from bench.report import Row
from bench.servers import BENCH_SECRET, app_server, pid_of, total_cpu_seconds, workers_of
from services.container import build_services
from services.core.config import Settings
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
    noise = split(live_webm(workspace, WARM_UP_S + 2 * window + 60))
    speech = speech_chunks(workspace, BUSY_MINUTES * 60)
    browsers = identities.ensure(workspace, RECORDERS)
    for priority in ('idle',) if quick else PRIORITIES:
        server = app_server(workspace, VR_TRANSCRIBE='true', VR_BACKGROUND_PRIORITY=priority).start(timeout=180)
        busy = _BusyWork(server.url, pid_of(server), speech, f'Background {priority}')

        def make_busy(priority: str = priority, busy: _BusyWork = busy) -> None:
            say(f'background ({priority}): queueing {BUSY_RECORDINGS} transcripts of {BUSY_MINUTES} min')
            busy.start()
            say(f'background ({priority}): the same recorders, the workers busy, {window} s')

        try:
            say(f'background ({priority}): {RECORDERS} recorder pages, {WARM_UP_S} s warming up, then {window} s idle')
            idle_load, busy_load = with_and_without(
                server.url, pid_of(server), identities=browsers, chunks=noise, warm_up_s=WARM_UP_S, window_s=window,
                change=make_busy,
            )  # fmt: skip
            worker_cpu = busy.worker_cpu_s()
            still_queued = busy.unfinished()
        finally:
            server.kill()
        lost = count_lost(workspace, idle_load.acked_seqs) + count_lost(workspace, busy_load.acked_seqs)
        _forget(workspace, [*idle_load.acked_seqs, *busy.ids])
        yield _row(priority, idle_load, busy_load, worker_cpu / window, still_queued, lost)


def _forget(workspace: Path, recording_ids: list[str]) -> None:
    """A priority's recordings, deleted once counted: left as they are, the next priority's server would spend its
    idle window finalizing 200 of them as stale, and its workers transcribing the 4 long ones (measured: the web
    process at 100 % of a core in that window, against 72 % in the first)."""
    services = build_services(Settings(_env_file=None, data_dir=workspace / 'data', secret=BENCH_SECRET))
    try:
        for recording_id in map(uuid.UUID, recording_ids):
            owner = services.recordings.owner_of(recording_id)
            services.recordings.delete(user_id=owner, recording_id=recording_id)
    finally:
        services.close()


class _BusyWork:
    """What makes the workers busy, queued between the idle and the busy window while the recorders wait connected:
    transcripts of recordings sent through the REST API, and their MP3 copies asked for."""

    def __init__(self, server_url: str, server_pid: int, speech: list[bytes], user_name: str) -> None:
        self.server_url, self.server_pid, self.speech, self.user_name = server_url, server_pid, speech, user_name
        self.exports: list[threading.Thread] = []
        self.ids: list[str] = []

    def start(self) -> None:
        self.api = api_user(self.server_url, self.user_name)
        self.ids = [upload(self.api, self.speech, seconds_per_chunk=30) for _ in range(BUSY_RECORDINGS)]
        self.workers = workers_of(self.server_pid)
        self.cpu_before = total_cpu_seconds(self.workers)
        self.exports = [threading.Thread(target=self.api.post, args=(f'/api/recordings/{i}/mp3',)) for i in self.ids]
        for thread in self.exports:
            thread.start()

    def worker_cpu_s(self) -> float:
        return total_cpu_seconds(self.workers) - self.cpu_before

    def unfinished(self) -> int:
        """Transcripts not done when the window ended: more than zero means the workers had work all along."""
        for thread in self.exports:
            thread.join(timeout=300)
        states = [self.api.get(f'/api/recordings/{i}/transcript').json().get('state') for i in self.ids]
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
