"""Soak: 100 recorders against one app for an hour, sampled each minute, then SIGKILL and a count of lost chunks.

Each minute is one load round of its own: every recorder loads its page, joins over a new websocket, creates a
recording and sends a chunk a second. Sessions coming and going every minute is the churn a leak feeds on; the
server process is the same for the whole soak. Growth is measured from the end of the warm-up to the end.
"""

from collections.abc import Callable
from pathlib import Path

import psutil

from bench import identities
from bench.audio import live_webm, split
from bench.load import count_lost, run_load
from bench.report import Row
from bench.servers import app_server, pid_of, rss_mb

RECORDERS = 100
WARM_UP_MINUTES = 5
ROUND_S = 60.0


def run(workspace: Path, *, minutes: int, say: Callable[[str], None]) -> list[Row]:
    chunks = split(live_webm(workspace, 60))
    browsers = identities.ensure(workspace, RECORDERS)
    server = app_server(workspace).start()
    samples: list[tuple[int, float, int, float]] = []  # minute, RSS MB, open files, p99 ms
    acked: dict[str, list[int]] = {}
    failed = 0
    try:
        process = psutil.Process(pid_of(server))
        for minute in range(1, minutes + 1):
            result = run_load(
                server.url, pid_of(server), bare=False, identities=browsers, chunks=chunks, duration_s=ROUND_S
            )
            acked |= result.acked_seqs
            failed += result.failed
            samples.append((minute, rss_mb(process), process.num_fds(), result.p99_ms))
            _minute, rss, files, p99 = samples[-1]
            say(f'soak: minute {minute}: RSS {rss:.0f} MB, {files} open files, p99 {p99:.0f} ms')
    finally:
        server.kill()
    lost = count_lost(workspace, acked)
    return [_summary(samples, lost, failed, sum(len(seqs) for seqs in acked.values()))]


def _summary(samples: list[tuple[int, float, int, float]], lost: int, failed: int, acked: int) -> Row:
    warm = samples[min(WARM_UP_MINUTES, len(samples)) - 1]
    last = samples[-1]
    growth = 100 * (last[1] - warm[1]) / warm[1]
    worst_p99 = max(sample[3] for sample in samples)
    trace = ', '.join(f'{minute}: {rss:.0f} MB/{files} files/{p99:.0f} ms' for minute, rss, files, p99 in samples)
    return Row(
        '7 soak',
        f'{RECORDERS} recorders × 1 chunk/s for {len(samples)} min',
        f'RSS {warm[1]:.0f} → {last[1]:.0f} MB after warm-up (**{growth:+.1f} %**); open files {warm[2]} → {last[2]}; '
        f'worst minute p99 {worst_p99:.0f} ms; **{lost} lost** of {acked} acknowledged, {failed} unacknowledged',
        '',
        f'goal: growth under 10 % after {WARM_UP_MINUTES} min of warm-up; each minute (RSS/open files/p99): {trace}',
    )
