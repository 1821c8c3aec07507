"""Runs the load generator in worker processes against one server and measures the server while they send."""

import multiprocessing
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil
from sqlmodel import col, select

from services.config import Settings
from services.container import build_services
from services.models import Chunk
from services.storage.keys import chunk_key

from .loadgen import ACK_TIMEOUT_S, WorkerResult, WorkerSpec, worker_main
from .report import percentile
from .servers import BENCH_SECRET, cpu_seconds, rss_mb

SETUP_TIMEOUT_S = 300
WORKERS = 2  # one per core: the generator needs about as much CPU as a bare socket.io server


@dataclass
class LoadResult:
    recorders: int
    p50_ms: float
    p99_ms: float
    sent: int
    acked: int
    failed: int
    disconnected: int  # of the failed: the server dropped the websocket (e.g. a missed ping while it lagged)
    throughput: float  # acknowledged chunks per second
    server_cpu_pct: float
    server_rss_mb: float
    generator_cpu_pct: float
    send_lag_p99_ms: float
    other_cpu_pct: float  # everything else on the machine meanwhile: other people's builds make a run noisy
    setup_failures: list[str]
    acked_seqs: dict[str, list[int]]


def run_load(
    base_url: str,
    server_pid: int,
    *,
    bare: bool,
    identities: list[str],
    chunks: list[bytes],
    duration_s: float,
    closed_loop: bool = False,
) -> LoadResult:
    """All recorders set up first, then every worker starts sending at one common moment."""
    count = min(WORKERS, len(identities))
    slices = [identities[i::count] for i in range(count)]
    starts = [sum(len(s) for s in slices[:i]) for i in range(count)]
    context = multiprocessing.get_context('spawn')
    pipes, processes = [], []
    for identities_slice, first in zip(slices, starts, strict=True):
        spec = WorkerSpec(base_url, bare, identities_slice, first, len(identities), chunks, duration_s, closed_loop)
        parent, child = context.Pipe()
        process = context.Process(target=worker_main, args=(spec, child), daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        ready = sum(_receive(pipe, SETUP_TIMEOUT_S)[1] for pipe in pipes)
        server = psutil.Process(server_pid)
        start_at = time.time() + 1.0
        for pipe in pipes:
            pipe.send(start_at)
        cpu_used, machine_used, rss = _measure(server, start_at, duration_s)
        results: list[WorkerResult] = [_receive(pipe, ACK_TIMEOUT_S + 120) for pipe in pipes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return _combine(results, ready, duration_s, cpu_used, machine_used, rss)


def _receive(pipe: Connection, timeout_s: float) -> Any:
    if not pipe.poll(timeout_s):
        raise TimeoutError(f'a load generator sent nothing for {timeout_s} s')
    return pipe.recv()


def _measure(server: psutil.Process, start_at: float, duration_s: float) -> tuple[float, float, float]:
    """Server and whole-machine CPU seconds during the sending window, and the server's largest RSS then."""
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before, machine_before, peak_rss = cpu_seconds(server), _machine_busy_s(), rss_mb(server)
    while time.time() < start_at + duration_s:
        time.sleep(0.5)
        peak_rss = max(peak_rss, rss_mb(server))
    return cpu_seconds(server) - cpu_before, _machine_busy_s() - machine_before, peak_rss


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, 'iowait', 0.0))


def _combine(
    results: list[WorkerResult], ready: int, duration_s: float, cpu_s: float, machine_s: float, rss: float
) -> LoadResult:
    generator_s = sum(result.cpu_s for result in results)
    latencies = [value for result in results for value in result.latencies_ms]
    lags = [value for result in results for value in result.send_lag_ms]
    acked = sum(result.acked for result in results)
    failed = sum(result.refused + result.timed_out + result.disconnected for result in results)
    return LoadResult(
        recorders=ready,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        sent=sum(result.sent for result in results),
        acked=acked,
        failed=failed,
        disconnected=sum(result.disconnected for result in results),
        throughput=acked / duration_s,
        server_cpu_pct=100 * cpu_s / duration_s,
        server_rss_mb=rss,
        generator_cpu_pct=100 * generator_s / duration_s,
        send_lag_p99_ms=percentile(lags, 0.99),
        other_cpu_pct=max(0.0, 100 * (machine_s - cpu_s - generator_s) / duration_s),
        setup_failures=[failure for result in results for failure in result.setup_failures],
        acked_seqs={rid: seqs for result in results for rid, seqs in result.acked_seqs.items()},
    )


def count_lost(workspace: Path, acked_seqs: dict[str, list[int]]) -> int:
    """Acknowledged chunks that have no database row or no stored bytes: each one is audio a user lost."""
    services = build_services(Settings(_env_file=None, data_dir=workspace / 'data', secret=BENCH_SECRET))
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
