"""One load-generator process: many simulated recorders on one asyncio loop, each a page plus its own websocket.

Open loop (the browser's pattern): recorder i sends chunk k at start + k seconds + its phase, whether or not earlier
acknowledgements came back, and times each send → acknowledgement. Closed loop: each recorder sends its next chunk
as soon as the previous one is acknowledged, to find the most chunks per second a server takes. A day (`plans`):
each recorder makes recordings of the lengths its plan gives, open loop; at the end of each it presses Stop (the
`finalize` event, timed until the recording is playable), waits the plan's pause, and starts the next.
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
    durations_s: tuple[float, ...]  # the sending windows, on the same pages; only the open loop takes more than one
    closed_loop: bool = False
    plans: list[list[tuple[int, float]]] | None = None  # per recorder of this worker: (seconds, pause after) each
    speech: list[bytes] | None = None  # what every `speech_every`-th recorder (by its index in `total`) sends
    speech_every: int = 0


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
    stop_ms: list[float] = field(default_factory=list)  # Stop → the answer that the recording is playable
    finalized: dict[str, int] = field(default_factory=dict)  # recording id → its chunk count
    stop_failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    start_at: float
    duration_s: float
    first_seq: int  # an open-loop recorder goes on where the window before left off


@dataclass
class Recorder:
    socket: socketio.AsyncClient
    payload: dict[str, Any]
    recording_id: str
    acked: list[int] = field(default_factory=list)
    backoff_s: float = FIRST_BACKOFF_S
    chunks: list[bytes] | None = None  # its own audio, else the spec's


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """Process entry point: set up, report ready, then for each window wait for its common start time, run, and send
    its result back; leave (disconnect) only when told, all workers together: a worker done first used to leave
    while the others still waited for their last answers, so those answers waited on the server closing its pages
    (the last second of a window had its highest latencies, 71-147 ms against 10-30 ms in the seconds before)."""
    asyncio.run(_run(spec, conn))


async def _run(spec: WorkerSpec, conn: Connection) -> None:
    result = WorkerResult()
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default 100 would hold back every websocket past the 100th
    async with aiohttp.ClientSession(connector=connector) as http:
        recorders = await _set_up(spec, http, result)
        conn.send(('ready', len(recorders)))
        first_seq = 0
        for duration_s in spec.durations_s:
            start_at = await asyncio.to_thread(conn.recv)  # in a thread: the loop must keep answering pings
            window = Window(start_at, duration_s, first_seq)
            for recorder in recorders:
                recorder.acked = []
            cpu_before = psutil.Process().cpu_times()
            await asyncio.gather(*(_runner(spec)(spec, i, r, window, result) for i, r in enumerate(recorders)))
            cpu_after = psutil.Process().cpu_times()
            result.cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
            result.acked_seqs.update({r.recording_id: r.acked for r in recorders})
            conn.send(result)
            result = WorkerResult()
            first_seq += int(duration_s)
        await asyncio.to_thread(conn.recv)  # every worker is done: leave
        await asyncio.gather(*(r.socket.disconnect() for r in recorders), return_exceptions=True)


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
    for index, recorder in enumerate(made):
        if (
            recorder is not None
            and spec.speech
            and spec.speech_every
            and (spec.first_index + index) % spec.speech_every == 0
        ):
            recorder.chunks = spec.speech
    return [recorder for recorder in made if recorder is not None]


async def _open_recorder(spec: WorkerSpec, http: aiohttp.ClientSession, identity: str) -> Recorder:
    if spec.bare:
        page, token = LoadedPage(spec.base_url, 'bare', {}), 'bare'
    else:
        async with aiohttp.ClientSession(cookies={'session': identity}) as browser:
            page = await load_page(browser, f'{spec.base_url}/recorder')
        token = page.elements[page.element_id(recoverOnly=False)]['props']['uploadToken']
    socket = await connect(spec.base_url, page, http, upload_token=token)
    recording_id = await _create(socket)
    return Recorder(socket, {'recording_id': recording_id}, recording_id)


async def _create(socket: socketio.AsyncClient) -> str:
    create = {'mime_type': 'audio/webm;codecs=opus', 'title': 'bench', 'time_zone': 'UTC'}
    answer = await socket.call('create', create, namespace=AUDIO_NAMESPACE, timeout=30)
    if not answer.get('ok'):
        raise RuntimeError(f'create refused: {answer}')
    return str(answer['recording_id'])


async def _send(spec: WorkerSpec, recorder: Recorder, seq: int, result: WorkerResult, window: Window) -> None:
    """Like the browser: a chunk the server answers "retry" for (busy, rate-limited) or does not answer in time is
    sent again after a backoff, until acknowledged or the run's drain deadline; its latency runs from the first
    send to the acknowledgement, so a retry shows as the wait it was."""
    chunks = recorder.chunks or spec.chunks
    payload = {**recorder.payload, 'seq': seq, 'data': chunks[seq % len(chunks)]}
    result.sent += 1
    sent_at = time.perf_counter()
    deadline = time.time() + window.duration_s + DRAIN_S
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


def _runner(spec: WorkerSpec) -> Any:
    return _day if spec.plans else _closed if spec.closed_loop else _open


async def _open(spec: WorkerSpec, index: int, recorder: Recorder, window: Window, result: WorkerResult) -> None:
    phase = (spec.first_index + index) / spec.total  # recorders are spread evenly over each second
    sends = []
    for second in range(int(window.duration_s)):
        due = window.start_at + phase + second
        await asyncio.sleep(max(0.0, due - time.time()))
        result.send_lag_ms.append(max(0.0, time.time() - due) * 1000)
        seq = window.first_seq + second
        sends.append(asyncio.create_task(_send(spec, recorder, seq, result, window)))
    await asyncio.gather(*sends)


async def _day(spec: WorkerSpec, index: int, recorder: Recorder, window: Window, result: WorkerResult) -> None:
    """Recordings one after another as the plan gives them; the one under way when the window ends is left as it
    is (the loss check looks for its chunks, the others' for their playable files)."""
    assert spec.plans is not None
    end = window.start_at + window.duration_s
    due = window.start_at + (spec.first_index + index) / spec.total
    for seconds, pause in spec.plans[index]:
        sends = []
        for seq in range(seconds):
            if due >= end:
                break
            await asyncio.sleep(max(0.0, due - time.time()))
            result.send_lag_ms.append(max(0.0, time.time() - due) * 1000)
            sends.append(asyncio.create_task(_send(spec, recorder, seq, result, window)))
            due += 1
        await asyncio.gather(*sends)
        if len(sends) < seconds:
            return
        await _stop(recorder, seconds, result)
        due = max(due, time.time()) + pause
        if due >= end:
            return
        try:
            recording_id = await _create(recorder.socket)
        except Exception as error:  # counted, and this recorder's day ends here
            result.stop_failures.append(f'start again: {type(error).__name__}: {error}')
            return
        recorder.recording_id, recorder.payload, recorder.acked = recording_id, {'recording_id': recording_id}, []


async def _stop(recorder: Recorder, chunk_count: int, result: WorkerResult) -> None:
    """Stop as the page does: `finalize` with the chunk count, sent again after a "retry" answer; timed from the first
    send to the answer that the recording is playable."""
    result.acked_seqs[recorder.recording_id] = recorder.acked
    if len(recorder.acked) != chunk_count:
        result.stop_failures.append(f'{chunk_count - len(recorder.acked)} chunks never acknowledged')
        return
    payload = {'recording_id': recorder.recording_id, 'chunk_count': chunk_count}
    started, backoff = time.perf_counter(), FIRST_BACKOFF_S
    while True:
        try:
            answer = await recorder.socket.call('finalize', payload, namespace=AUDIO_NAMESPACE, timeout=120)
        except (socketio.exceptions.SocketIOError, ConnectionError) as error:
            answer = {'ok': False, 'retry': False, 'error': f'{type(error).__name__}: {error}'}
        if answer.get('ok') or not answer.get('retry') or time.perf_counter() - started > 120:
            break
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)
    if answer.get('ok'):
        result.stop_ms.append((time.perf_counter() - started) * 1000)
        result.finalized[recorder.recording_id] = chunk_count
    else:
        result.stop_failures.append(f'finalize: {answer.get("status")} {answer.get("error")}')


async def _closed(spec: WorkerSpec, index: int, recorder: Recorder, window: Window, result: WorkerResult) -> None:
    del index
    await asyncio.sleep(max(0.0, window.start_at - time.time()))
    seq = window.first_seq
    while time.time() < window.start_at + window.duration_s and recorder.socket.connected:
        await _send(spec, recorder, seq, result, window)
        seq += 1
