"""Runs the load generator in worker processes against a server (or several) and measures them while they send."""

import contextlib
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
from sqlmodel import col, select

from bench.loadgen import ACK_TIMEOUT_S, WorkerResult, WorkerSpec, worker_main
from bench.report import percentile
from bench.servers import BENCH_SECRET, cpu_seconds, rss_mb
from services.container import build_services
from services.core.config import Settings
from services.core.models import Chunk
from services.storage.keys import chunk_key

SETUP_TIMEOUT_S = 300
WORKERS = 2  # one per core: the generator needs about as much CPU as a bare socket.io server


@dataclass
class LoadResult:
    recorders: int
    p50_ms: float
    p99_ms: float
    sent: int
    acked: int
    failed: int  # never acknowledged, even after the browser-like resends
    resent: int  # sends again after a "retry" answer (busy, rate-limited) or no answer in time
    disconnected: int  # of the failed: the server dropped the websocket (e.g. a missed ping while it lagged)
    throughput: float  # acknowledged chunks per second
    server_cpu_pct: float  # all server processes together
    server_rss_mb: float  # the sum of their peaks
    generator_cpu_pct: float
    send_lag_p99_ms: float
    other_cpu_pct: float  # everything else on the machine meanwhile: other people's builds make a run noisy
    setup_failures: list[str]
    refusals: dict[str, int]
    acked_seqs: dict[str, list[int]]
    server_cpu_pcts: list[float]  # each server process, in the order given
    server_rss_mbs: list[float]
    support_cpu_pcts: dict[str, float]  # each supporting part (database, storage, ...) with its child processes
    stop_ms: list[float]  # a day's Stops: each until the recording was playable
    finalized: dict[str, int]  # a day's finished recordings: id → chunk count
    stop_failures: list[str]


@dataclass
class _Window:
    """What the measured processes and the machine used during the sending window."""

    server_s: list[float]
    server_rss: list[float]
    support_s: dict[str, float]
    machine_s: float


def run_load(
    base_url: str,
    server_pid: int | Sequence[int],
    *,
    bare: bool,
    identities: list[str],
    chunks: list[bytes],
    duration_s: float,
    closed_loop: bool = False,
    support_pids: Mapping[str, int] | None = None,
    plans: list[list[tuple[int, float]]] | None = None,
    speech: list[bytes] | None = None,
    speech_every: int = 0,
) -> LoadResult:
    """All recorders set up first, then every worker starts sending at one common moment.

    `server_pid` may be several app instances, each measured on its own; `support_pids` names the parts they share
    (PostgreSQL, S3, ...), each measured with its child processes, so the rest of the machine is not charged to them.
    `plans` makes it a day (see bench/loadgen.py): one plan per identity; every `speech_every`-th recorder sends
    `speech` instead of `chunks`.
    """
    (result,) = run_windows(
        base_url, server_pid, bare=bare, identities=identities, chunks=chunks, durations_s=[duration_s],
        closed_loop=closed_loop, support_pids=support_pids, plans=plans, speech=speech, speech_every=speech_every,
    )  # fmt: skip
    return result


def run_windows(
    base_url: str,
    server_pid: int | Sequence[int],
    *,
    bare: bool,
    identities: list[str],
    chunks: list[bytes],
    durations_s: Sequence[float],
    between: Callable[[int], None] = lambda window: None,
    closed_loop: bool = False,
    support_pids: Mapping[str, int] | None = None,
    plans: list[list[tuple[int, float]]] | None = None,
    speech: list[bytes] | None = None,
    speech_every: int = 0,
) -> list[LoadResult]:
    """`run_load` for several windows on the same pages, each measured on its own; `between(n)` runs before window
    n > 0 while the recorders wait, connected. Opening pages is not what a window measures: 200 of them opened at
    once grow the heap enough for CPython's full collections (bench/results.md, "Background work beside ingest")."""
    assert len(durations_s) == 1 or not (plans or closed_loop), 'only the open loop goes on over several windows'
    count = min(WORKERS, len(identities))
    slices = [identities[i::count] for i in range(count)]
    starts = [sum(len(s) for s in slices[:i]) for i in range(count)]
    context = multiprocessing.get_context('spawn')
    pipes, processes = [], []
    for i, (identities_slice, first) in enumerate(zip(slices, starts, strict=True)):
        plan_slice = plans[i::count] if plans else None
        spec = WorkerSpec(
            base_url, bare, identities_slice, first, len(identities), chunks, tuple(durations_s), closed_loop,
            plan_slice, speech, speech_every,
        )  # fmt: skip
        parent, child = context.Pipe()
        process = context.Process(target=worker_main, args=(spec, child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    combined = []
    try:
        ready = sum(_receive(pipe, SETUP_TIMEOUT_S)[1] for pipe in pipes)
        servers = [psutil.Process(pid) for pid in ([server_pid] if isinstance(server_pid, int) else server_pid)]
        support = {name: psutil.Process(pid) for name, pid in (support_pids or {}).items()}
        for number, duration_s in enumerate(durations_s):
            if number:
                between(number)
            start_at = time.time() + 1.0
            for pipe in pipes:
                pipe.send(start_at)
            window = _measure(servers, support, start_at, duration_s)
            results: list[WorkerResult] = [_receive(pipe, ACK_TIMEOUT_S + 120) for pipe in pipes]
            combined.append(_combine(results, ready, duration_s, window))
        for pipe in pipes:
            pipe.send('leave')  # together, once every answer is in (loadgen.worker_main)
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return combined


def with_and_without(
    base_url: str,
    server_pid: int,
    *,
    identities: list[str],
    chunks: list[bytes],
    warm_up_s: float,
    window_s: float,
    change: Callable[[], None],
) -> tuple[LoadResult, LoadResult]:
    """The same recorders on the same open pages: a warm-up (not measured), a window as things are, then `change()`
    while they wait connected, and a window with it; both windows' results."""
    _, before, after = run_windows(
        base_url, server_pid, bare=False, identities=identities, chunks=chunks,
        durations_s=[warm_up_s, window_s, window_s], between=lambda window: change() if window == 2 else None,
    )  # fmt: skip
    return before, after


def _receive(pipe: Connection, timeout_s: float) -> Any:
    if not pipe.poll(timeout_s):
        raise TimeoutError(f'a load generator sent nothing for {timeout_s} s')
    return pipe.recv()


def _measure(
    servers: list[psutil.Process], support: dict[str, psutil.Process], start_at: float, duration_s: float
) -> _Window:
    """CPU seconds of each server, each supporting part and the whole machine during the sending window, and each
    server's largest RSS then."""
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before, machine_before = [cpu_seconds(server) for server in servers], _machine_busy_s()
    support_before = {name: _tree_cpu_s(process) for name, process in support.items()}
    peak_rss = [rss_mb(server) for server in servers]
    while time.time() < start_at + duration_s:
        time.sleep(0.5)
        peak_rss = [max(peak, rss_mb(server)) for peak, server in zip(peak_rss, servers, strict=True)]
    return _Window(
        server_s=[cpu_seconds(server) - before for server, before in zip(servers, cpu_before, strict=True)],
        server_rss=peak_rss,
        support_s={name: _tree_cpu_s(process) - support_before[name] for name, process in support.items()},
        machine_s=_machine_busy_s() - machine_before,
    )


def _tree_cpu_s(root: psutil.Process) -> float:
    """CPU seconds of a process and its live descendants, plus those of descendants already ended and reaped
    (PostgreSQL's backends come and go: a reaped child's time moves into its parent's children_* counters)."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, 'iowait', 0.0))


def _combine(results: list[WorkerResult], ready: int, duration_s: float, window: _Window) -> LoadResult:
    generator_s = sum(result.cpu_s for result in results)
    cpu_s, support_s = sum(window.server_s), sum(window.support_s.values())
    latencies = [value for result in results for value in result.latencies_ms]
    lags = [value for result in results for value in result.send_lag_ms]
    acked = sum(result.acked for result in results)
    failed = sum(result.refused + result.disconnected for result in results)
    return LoadResult(
        recorders=ready,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        sent=sum(result.sent for result in results),
        acked=acked,
        failed=failed,
        resent=sum(result.resent for result in results),
        disconnected=sum(result.disconnected for result in results),
        throughput=acked / duration_s,
        server_cpu_pct=100 * cpu_s / duration_s,
        server_rss_mb=sum(window.server_rss),
        generator_cpu_pct=100 * generator_s / duration_s,
        send_lag_p99_ms=percentile(lags, 0.99),
        other_cpu_pct=max(0.0, 100 * (window.machine_s - cpu_s - support_s - generator_s) / duration_s),
        setup_failures=[failure for result in results for failure in result.setup_failures],
        refusals=_add_up(result.refusals for result in results),
        acked_seqs={rid: seqs for result in results for rid, seqs in result.acked_seqs.items()},
        server_cpu_pcts=[100 * seconds / duration_s for seconds in window.server_s],
        server_rss_mbs=window.server_rss,
        support_cpu_pcts={name: 100 * seconds / duration_s for name, seconds in window.support_s.items()},
        stop_ms=[value for result in results for value in result.stop_ms],
        finalized={rid: count for result in results for rid, count in result.finalized.items()},
        stop_failures=[failure for result in results for failure in result.stop_failures],
    )


def _add_up(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for reason, times in count.items():
            total[reason] = total.get(reason, 0) + times
    return total


def count_lost(workspace: Path, acked_seqs: dict[str, list[int]], settings: Settings | None = None) -> int:
    """Acknowledged chunks that have no database row or no stored bytes: each one is audio a user lost.

    By default they are looked up in the workspace app's SQLite and folder; `settings` points elsewhere (the
    scale-out stack's PostgreSQL and bucket)."""
    settings = settings or Settings(_env_file=None, data_dir=workspace / 'data', secret=BENCH_SECRET)
    services = build_services(settings)
    try:
        lost = 0
        with services.database.session() as session:
            for recording_id, seqs in acked_seqs.items():
                rid = uuid.UUID(recording_id)
                query = select(Chunk.seq, Chunk.sha256).where(col(Chunk.recording_id) == rid)
                stored = dict(session.exec(query).all())
                lost += sum(
                    1
                    for seq in seqs
                    if seq not in stored or not services.storage.exists(chunk_key(rid, seq, stored[seq]))
                )
        return lost
    finally:
        services.close()
