"""1. Ingest capacity: N recorders, one ~16 KiB chunk a second each, over the page's own websocket path."""

from collections.abc import Callable, Iterator
from pathlib import Path

from bench import identities
from bench.audio import live_webm, split
from bench.load import LoadResult, count_lost, run_load
from bench.report import Row
from bench.servers import BaselineServer, app_server, pid_of

LEVELS = (50, 100, 200, 500, 1000)
QUICK_LEVELS = (50, 200)
STOP_P99_MS = 1000.0
SATURATION_RECORDERS = 50


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> Iterator[Row]:
    """Yields each row as it is measured, so the report has it even if a later level fails."""
    chunks = split(live_webm(workspace, 60))
    levels = QUICK_LEVELS if quick else LEVELS
    duration_s = 6.0 if quick else 20.0
    say(f'ingest: signing in {max(levels)} browsers through /onboard')
    browsers = identities.ensure(workspace, max(levels))
    for n in levels:
        say(f'ingest: {n} recorders for {duration_s:.0f} s: bare socket.io, bare + fsync, then the app')
        bare = _bare(workspace, n, chunks, duration_s)
        durable = _bare(workspace, n, chunks, duration_s, durable=True)
        ours, lost = _ours(workspace, browsers[:n], chunks, duration_s)
        baselines = f'bare: {_bare_text(bare)}<br>bare + append + fsync: {_bare_text(durable)}'
        yield Row('1 ingest', f'{n} recorders × 1 chunk/s', _ours_text(ours, lost, bare), baselines)
        if ours.p99_ms > STOP_P99_MS or ours.recorders < n:
            yield Row('1 ingest', f'> {n} recorders', 'not run', '', f'stopped: p99 past {STOP_P99_MS:.0f} ms')
            break
    say(f'ingest: saturation, {SATURATION_RECORDERS} recorders sending back to back')
    bare = _bare(workspace, SATURATION_RECORDERS, chunks, duration_s / 2, closed_loop=True)
    durable = _bare(workspace, SATURATION_RECORDERS, chunks, duration_s / 2, closed_loop=True, durable=True)
    ours, lost = _ours(workspace, browsers[:SATURATION_RECORDERS], chunks, duration_s / 2, closed_loop=True)
    yield Row(
        '1 ingest',
        f'max throughput ({SATURATION_RECORDERS} recorders, closed loop)',
        f'{ours.throughput:.0f} chunks/s = **{ours.throughput / bare.throughput:.2f}× bare**, '
        f'{ours.throughput / durable.throughput:.2f}× bare + fsync; '
        f'p50 {ours.p50_ms:.1f} ms; CPU {ours.server_cpu_pct:.0f} %; {lost} lost',
        f'bare: {bare.throughput:.0f} chunks/s, CPU {bare.server_cpu_pct:.0f} %<br>'
        f'bare + append + fsync: {durable.throughput:.0f} chunks/s, CPU {durable.server_cpu_pct:.0f} %',
        'each recorder sends its next chunk as soon as the last is acknowledged',
    )


def _bare(
    workspace: Path, n: int, chunks: list[bytes], duration_s: float, closed_loop: bool = False, durable: bool = False
) -> LoadResult:
    """The bare socket.io server; `durable` makes it append and fsync each chunk before it acknowledges."""
    extra = ('--durable', str(workspace / 'durable-baseline')) if durable else ()
    server = BaselineServer(workspace, 'bare_server', *extra).start()
    try:
        return run_load(
            server.url,
            pid_of(server),
            bare=True,
            identities=[''] * n,
            chunks=chunks,
            duration_s=duration_s,
            closed_loop=closed_loop,
        )
    finally:
        server.stop()


def _ours(
    workspace: Path, browsers: list[str], chunks: list[bytes], duration_s: float, closed_loop: bool = False
) -> tuple[LoadResult, int]:
    """Ends with SIGKILL, then checks storage and database: every acknowledged chunk must have survived."""
    server = app_server(workspace).start()
    try:
        result = run_load(
            server.url,
            pid_of(server),
            bare=False,
            identities=browsers,
            chunks=chunks,
            duration_s=duration_s,
            closed_loop=closed_loop,
        )
    finally:
        server.kill()
    return result, count_lost(workspace, result.acked_seqs)


def _ours_text(ours: LoadResult, lost: int, bare: LoadResult) -> str:
    ratio = ours.throughput / bare.throughput if bare.throughput else float('nan')
    cpu_ratio = (ours.server_cpu_pct / ours.throughput) / (bare.server_cpu_pct / bare.throughput) if bare.acked else 0
    dropped = f' ({ours.disconnected} on dropped websockets)' if ours.disconnected else ''
    resent = f' ({ours.resent} sends again after "busy")' if ours.resent else ''
    failed = f'{ours.failed} unacknowledged after the run{dropped}{resent}' + (
        f', {len(ours.setup_failures)} did not start' if ours.setup_failures else ''
    )
    return (
        f'p50 **{ours.p50_ms:.1f}** / p99 **{ours.p99_ms:.0f} ms**; **{lost} lost**, {failed}; '
        f'CPU {ours.server_cpu_pct:.0f} %, RSS {ours.server_rss_mb:.0f} MB; '
        f'{ours.throughput:.0f} chunks/s = {ratio:.2f}× bare, CPU per chunk {cpu_ratio:.1f}× bare; '
        f'generator CPU {ours.generator_cpu_pct:.0f} %, send lag p99 {ours.send_lag_p99_ms:.0f} ms; '
        f'other processes {ours.other_cpu_pct:.0f} %'
    )


def _bare_text(bare: LoadResult) -> str:
    return (
        f'p50 {bare.p50_ms:.1f} / p99 {bare.p99_ms:.0f} ms; {bare.failed} unacknowledged; '
        f'CPU {bare.server_cpu_pct:.0f} %, RSS {bare.server_rss_mb:.0f} MB; {bare.throughput:.0f} chunks/s; '
        f'other processes {bare.other_cpu_pct:.0f} %'
    )
