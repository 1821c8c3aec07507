"""One load-generator process: many simulated recorders on one asyncio loop, each a page plus its own websocket.

Open loop (the browser's pattern): recorder i sends chunk k at start + k seconds + its phase, whether or not earlier
acknowledgements came back, and times each send → acknowledgement. Closed loop: each recorder sends its next chunk
as soon as the previous one is acknowledged, to find the most chunks per second a server takes.
"""

import asyncio
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import psutil
import socketio

from bench.page_client import AUDIO_NAMESPACE, LoadedPage, connect, load_page

ACK_TIMEOUT_S = 10.0  # the browser element's ACK_TIMEOUT_MS
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.25, 8.0  # the browser's FIRST_BACKOFF_MS and MAX_BACKOFF_MS
DRAIN_S = 30.0  # after the sending window, how long refused chunks are still sent again
SETUP_CONCURRENCY = 8


@dataclass(frozen=True)
class WorkerSpec:
    base_url: str
    bare: bool  # the bare socket.io baseline: no page to load, the server ignores client and element ids
    identities: list[str]  # one browser session cookie per recorder
    first_index: int  # this worker's recorders are first_index.. of `total`, which spreads their send phases
    total: int
    chunks: list[bytes]
    duration_s: float
    closed_loop: bool = False


@dataclass
class WorkerResult:
    latencies_ms: list[float] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    refused: int = 0  # never acknowledged: refused for good, or still refused at the drain deadline
    resent: int = 0  # sends again after a "retry" answer or a timeout
    disconnected: int = 0
    setup_failures: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # the server's answer -> how often
    acked_seqs: dict[str, list[int]] = field(default_factory=dict)
    cpu_s: float = 0.0


@dataclass
class Recorder:
    socket: socketio.AsyncClient
    payload: dict[str, Any]
    recording_id: str
    acked: list[int] = field(default_factory=list)
    backoff_s: float = FIRST_BACKOFF_S


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Process entry point: set up, report ready, wait for the common start time, run, send the result back."""
    conn.send(asyncio.run(_run(spec, conn)))


async def _run(spec: WorkerSpec, conn: Connection) -> WorkerResult:
    result = WorkerResult()
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default 100 would hold back every websocket past the 100th
    async with aiohttp.ClientSession(connector=connector) as http:
        recorders = await _set_up(spec, http, result)
        conn.send(('ready', len(recorders)))
        start_at = await asyncio.to_thread(conn.recv)  # in a thread: the loop must keep answering pings
        cpu_before = psutil.Process().cpu_times()
        runs = [_closed(spec, r, start_at, result) if spec.closed_loop else _open(spec, i, r, start_at, result)
                for i, r in enumerate(recorders)]  # fmt: skip
        await asyncio.gather(*runs)
        cpu_after = psutil.Process().cpu_times()
        result.cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        result.acked_seqs = {r.recording_id: r.acked for r in recorders}
        await asyncio.gather(*(r.socket.disconnect() for r in recorders), return_exceptions=True)
    return result


async def _set_up(spec: WorkerSpec, http: aiohttp.ClientSession, result: WorkerResult) -> list[Recorder]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(identity: str) -> Recorder | None:
        async with gate:
            try:
                return await _open_recorder(spec, http, identity)
            except Exception as error:  # a recorder that cannot start is reported, not fatal to the run
                result.setup_failures.append(f'{type(error).__name__}: {error}')
                return None

    made = await asyncio.gather(*(one(identity) for identity in spec.identities))
    return [recorder for recorder in made if recorder is not None]


async def _open_recorder(spec: WorkerSpec, http: aiohttp.ClientSession, identity: str) -> Recorder:
    if spec.bare:
        page, token = LoadedPage(spec.base_url, 'bare', {}), 'bare'
    else:
        async with aiohttp.ClientSession(cookies={'session': identity}) as browser:
            page = await load_page(browser, f'{spec.base_url}/recorder')
        token = page.elements[page.element_id(recoverOnly=False)]['props']['uploadToken']
    socket = await connect(spec.base_url, page, http, upload_token=token)
    create = {'mime_type': 'audio/webm;codecs=opus', 'title': 'bench', 'time_zone': 'UTC'}
    answer = await socket.call('create', create, namespace=AUDIO_NAMESPACE, timeout=30)
    if not answer.get('ok'):
        raise RuntimeError(f'create refused: {answer}')
    return Recorder(socket, {'recording_id': answer['recording_id']}, answer['recording_id'])


async def _send(spec: WorkerSpec, recorder: Recorder, seq: int, result: WorkerResult) -> None:
    """Like the browser: a chunk the server answers "retry" for (busy, rate-limited) or does not answer in time is
    sent again after a backoff, until acknowledged or the run's drain deadline; its latency runs from the first
    send to the acknowledgement, so a retry shows as the wait it was."""
    payload = {**recorder.payload, 'seq': seq, 'data': spec.chunks[seq % len(spec.chunks)]}
    result.sent += 1
    sent_at = time.perf_counter()
    deadline = time.time() + spec.duration_s + DRAIN_S
    while True:
        try:
            answer = await recorder.socket.call('chunk', payload, namespace=AUDIO_NAMESPACE, timeout=ACK_TIMEOUT_S)
        except socketio.exceptions.TimeoutError:
            answer = {'ok': False, 'retry': True, 'status': 'timeout', 'error': f'no answer in {ACK_TIMEOUT_S:.0f} s'}
        except (socketio.exceptions.SocketIOError, ConnectionError):
            result.disconnected += 1
            return
        if answer.get('ok'):
            break
        reason = f'{answer.get("status")} {answer.get("error")}'
        result.refusals[reason] = result.refusals.get(reason, 0) + 1
        if not answer.get('retry') or time.time() + recorder.backoff_s > deadline:
            result.refused += 1
            return
        result.resent += 1
        await asyncio.sleep(recorder.backoff_s)
        recorder.backoff_s = min(recorder.backoff_s * 2, MAX_BACKOFF_S)
    recorder.backoff_s = FIRST_BACKOFF_S
    result.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
    result.acked += 1
    recorder.acked.append(seq)


async def _open(spec: WorkerSpec, index: int, recorder: Recorder, start_at: float, result: WorkerResult) -> None:
    phase = (spec.first_index + index) / spec.total  # recorders are spread evenly over each second
    sends = []
    for seq in range(int(spec.duration_s)):
        due = start_at + phase + seq
        await asyncio.sleep(max(0.0, due - time.time()))
        result.send_lag_ms.append(max(0.0, time.time() - due) * 1000)
        sends.append(asyncio.create_task(_send(spec, recorder, seq, result)))
    await asyncio.gather(*sends)


async def _closed(spec: WorkerSpec, recorder: Recorder, start_at: float, result: WorkerResult) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    seq = 0
    while time.time() < start_at + spec.duration_s and recorder.socket.connected:
        await _send(spec, recorder, seq, result)
        seq += 1
