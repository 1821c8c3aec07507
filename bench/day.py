"""10. A day: people record, stop and start again while others listen, search and export, on one instance.

The app runs as a self-hoster runs it: the embedded transcript workers (Whisper base) beside the web process. Over
the window:
- recorders (the ingest benchmark's websocket clients) make recordings of realistic lengths, most of a few minutes,
  one in ten of half an hour or more; each ends with Stop (timed until the answer that it is playable), a pause and
  the next recording. Every `SPEECH_EVERY`-th recorder speaks (real speech, transcribed for real); the others send
  pink noise, which the transcriber's voice detection skips: a 2-core server cannot transcribe a hundred people
  talking at once, and the row says how much speech it did transcribe;
- listeners (API users with recordings of speech) list, play, seek, search their words and export MP3s, and load
  the `/records` page of a recorder;
- every finished recording gets its waveform and transcript from the workers.
The baseline, in the same run, is the same recorders sending chunks with nothing else going on. At the end the
server is SIGKILLed: every finished recording must be playable with all its chunks, every acknowledged chunk of the
others must be stored.
"""

import asyncio
import random
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import psutil
from sqlmodel import col, select

from bench import identities, memory_trace
from bench.audio import live_webm, looped, split
from bench.finalize import open_services
from bench.live import speech_sequence
from bench.load import LoadResult, count_lost, run_load
from bench.records import time_page
from bench.report import Row, median, percentile
from bench.servers import app_server, cpu_seconds, pid_of, rss_mb, total_cpu_seconds, workers_of
from services.core.models import Recording, Transcript, TranscriptState
from services.recordings.lifecycle import is_playable
from services.recordings.service import recording_audio_key
from services.transcripts.engine import SAMPLE_RATE
from tests.support.audio_samples import live_webm as speech_webm

RECORDERS = 100
DAY_S, QUICK_DAY_S = 30 * 60, 4 * 60
BASELINE_S, QUICK_BASELINE_S = 180, 60
# One recorder in 50 speaks, the others send pink noise. 2 cores with Whisper base hear about 3 s of speech a second
# beside 100 recorders (measured: 0.15 CPU-s per second of speech, 0.008 per second of noise, whose voice detection
# finds nothing; the noise of 98 recorders alone takes 0.7 of a core): 1 in 10 speaking, as first tried, is three
# times that, and its backlog grows by arithmetic, not by any fault.
SPEECH_EVERY = 50
LISTENERS = 10
LISTENER_PAUSE_S = (5.0, 25.0)  # between one listener's actions
SAMPLE_EVERY_S = 30.0
LEVELS = (150, 200, 300)  # after the day, shorter runs with more recorders, while the goals hold
LEVEL_S = 5 * 60


@dataclass
class Samples:
    """What the sampler saw every `SAMPLE_EVERY_S`: (seconds since the start, value)."""

    web_rss_mb: list[tuple[float, float]] = field(default_factory=list)
    web_threads: list[tuple[float, int]] = field(default_factory=list)
    web_files: list[tuple[float, int]] = field(default_factory=list)
    backlog: list[tuple[float, int]] = field(default_factory=list)  # transcripts queued or under way


@dataclass
class Listening:
    """What the listeners timed, in ms, by action."""

    times: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, action: str, ms: float) -> None:
        self.times.setdefault(action, []).append(ms)


def run(
    workspace: Path,
    *,
    quick: bool,
    say: Callable[[str], None],
    seconds: int | None = None,
    trace_memory: bool = False,
) -> Iterator[Row]:
    """`trace_memory` runs the app under tracemalloc (bench/traced_app.py), snapshots it where the memory row starts
    and at the end, and writes what grew between them to bench/memory.md; its latencies are then not the app's."""
    day_s = seconds or (QUICK_DAY_S if quick else DAY_S)
    baseline_s = QUICK_BASELINE_S if quick else BASELINE_S
    # As long as the longest window a recording can fill (the day, or a level after a shorter day): a recording past
    # its audio's end would start its timestamps again, and its Stop be refused (a 1-minute day's 5-minute levels were).
    audio_s = min(max(day_s, 0 if quick else LEVEL_S), 3600) + 60
    noise = split(live_webm(workspace, audio_s))
    speech = speech_chunks(workspace, audio_s)
    browsers = identities.ensure(workspace, RECORDERS if quick else max(RECORDERS, *LEVELS))
    say('day: starting the app with its transcript workers (Whisper base)')
    snapshots = snapshot_folder(workspace)
    script = 'bench/traced_app.py' if trace_memory else 'main.py'
    server = app_server(workspace, script=script, VR_TRANSCRIBE='true', VR_BENCH_SNAPSHOTS=str(snapshots))
    server.start(timeout=180)
    levels: list[tuple[int, DayResult]] = []
    try:
        say(f'day: baseline, {RECORDERS} recorders sending chunks and nothing else, {baseline_s} s')
        load = partial(run_load, server.url, pid_of(server), bare=False, chunks=noise)
        alone = load(identities=browsers[:RECORDERS], duration_s=baseline_s)
        listeners = [Listener(server.url, f'Day listener {i}', speech) for i in range(LISTENERS)]
        say(f'day: {RECORDERS} recorders, {LISTENERS} listeners, for {day_s / 60:.0f} min')
        marks = (memory_start_s(day_s), None) if trace_memory else ()
        recorders = browsers[: RECORDERS // 2 if trace_memory else RECORDERS]  # tracing slows the app
        day = _day(workspace, load, pid_of(server), speech, listeners, recorders, day_s, marks)
        for count in () if quick or trace_memory else LEVELS:  # the most recorders for which the goals still hold
            say(f'day: {count} recorders, {LISTENERS} listeners, for {LEVEL_S / 60:.0f} min')
            level = _day(workspace, load, pid_of(server), speech, listeners, browsers[:count], LEVEL_S)
            levels.append((count, level))
            if not _goals_met(level.load):
                break
    finally:
        server.kill()
    lost = count_lost(workspace, alone.acked_seqs) + _lost_of_day(workspace, day.load)
    yield _row(len(recorders), day, _transcript_lags(workspace, day.load), lost, day_s, alone)
    yield _memory_row(day.samples, day_s)
    if trace_memory:
        yield memory_trace.report(snapshots, memory_start_s(day_s), day_s)
    for count, level in levels:
        yield _row(count, level, _transcript_lags(workspace, level.load), _lost_of_day(workspace, level.load), LEVEL_S)


def plans(count: int, seconds: float, seed: int = 1) -> list[list[tuple[int, float]]]:
    """Each recorder's recordings, (length in s, pause after), until the window is full: nine in ten last 1-6
    minutes, one in ten 30-60 minutes; the pause before the next is 5-30 s."""
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        plan, total = [], 0.0
        while total < seconds:
            length = rng.randint(1800, 3600) if rng.random() < 0.1 else rng.randint(60, 360)
            pause = rng.uniform(5, 30)
            plan.append((length, pause))
            total += length + pause
        made.append(plan)
    return made


def speech_chunks(workspace: Path, seconds: int) -> list[bytes]:
    """`seconds` of speech as a recorder sends it, a second's worth of bytes (on average) per chunk."""
    data = speech_loop(workspace, seconds)
    return split(data, len(data) // seconds)


def speech_loop(workspace: Path, seconds: int) -> bytes:
    """Two minutes of speech with pauses (the live benchmark's sentences), looped by stream copy to `seconds`."""
    folder = workspace / 'day'
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / 'speech.webm'
    if not source.exists():
        wav = folder / 'speech.wav'
        with wave.open(str(wav), 'wb') as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes((speech_sequence(folder, 0, 120) * 32767).astype('<i2').tobytes())
        speech_webm(wav, source)
    return looped(source, seconds)


def api_user(base_url: str, name: str) -> httpx.Client:
    """A client signed in as a new API user."""
    api = httpx.Client(base_url=base_url, timeout=60)
    token = api.post('/api/onboard', json={'name': name}).raise_for_status().json()['token']
    api.headers['Authorization'] = f'Bearer {token}'
    return api


def upload(api: httpx.Client, chunks: list[bytes], seconds_per_chunk: int = 1) -> str:
    """A recording sent through the REST API as fast as it takes it, then finished (its transcript is queued);
    `seconds_per_chunk` joins seconds into one request, as a script would, within the API's rate limit."""
    recording = api.post('/api/recordings', json={'mime_type': 'audio/webm'}).raise_for_status().json()
    headers = {'Content-Type': 'application/octet-stream'}
    step = seconds_per_chunk
    chunks = [b''.join(chunks[i : i + step]) for i in range(0, len(chunks), step)]
    for seq, chunk in enumerate(chunks):
        api.put(f'/api/recordings/{recording["id"]}/chunks/{seq}', content=chunk, headers=headers).raise_for_status()
    answer = api.post(f'/api/recordings/{recording["id"]}/finalize', json={'chunk_count': len(chunks)})
    return str(answer.raise_for_status().json()['id'])


class Listener:
    """An API user with two recordings of speech, who lists, plays, seeks, searches and exports them."""

    def __init__(self, base_url: str, name: str, speech: list[bytes]) -> None:
        self.base_url = base_url
        self.api = api_user(base_url, name)
        self.ids = [upload(self.api, speech[:seconds]) for seconds in (40, 20)]  # from the start: its header

    def act(self, rng: random.Random, listening: Listening, cookie: str) -> None:
        action = rng.choices(['list', 'play', 'seek', 'search', 'page', 'mp3'], [25, 25, 20, 15, 10, 5])[0]
        started = time.perf_counter()
        try:
            if action == 'page':
                listening.add(action, asyncio.run(time_page(self.base_url, cookie, 'bench'))[0])
                return
            if action == 'list':
                self.api.get('/api/recordings').raise_for_status()
            elif action == 'search':
                self.api.get('/api/recordings', params={'q': rng.choice(['coffee', 'morning', 'garden'])})
            else:
                recording = self.api.get(f'/api/recordings/{rng.choice(self.ids)}').raise_for_status().json()
                if action == 'mp3':
                    self.api.post(f'/api/recordings/{recording["id"]}/mp3').raise_for_status()
                else:
                    where = int(rng.uniform(0.1, 0.9) * (recording['size_bytes'] or 1))  # within the file
                    seek = {'Range': f'bytes={where}-'} if action == 'seek' else {}
                    with self.api.stream('GET', recording['audio_url'], headers=seek) as response:
                        next(response.iter_raw())
                        response.raise_for_status()
            listening.add(action, (time.perf_counter() - started) * 1000)
        except Exception as error:  # counted and shown; the day goes on
            listening.failures.append(f'{action}: {type(error).__name__}: {error}')


def _day(
    workspace: Path,
    load: Callable[..., LoadResult],
    server_pid: int,
    speech: list[bytes],
    listeners: list[Listener],
    browsers: list[str],
    seconds: int,
    snapshot_at: tuple[float | None, ...] = (),
) -> 'DayResult':
    """`snapshot_at`: seconds into the window at which the traced app writes a snapshot; None is the end."""
    snapshots = snapshot_folder(workspace)
    done = threading.Event()
    samples, listening = Samples(), Listening()
    web = psutil.Process(server_pid)
    workers = workers_of(server_pid)
    cpu_before = {'web': cpu_seconds(web), 'workers': total_cpu_seconds(workers)}
    threads = [threading.Thread(target=_sample, args=(workspace, web, samples, done), daemon=True)]
    threads += [
        threading.Thread(target=memory_trace.snapshot_after, args=(web, snapshots, at, done), daemon=True)
        for at in snapshot_at
        if at is not None
    ]
    for number, listener in enumerate(listeners):
        loop = _listen(listener, random.Random(number), listening, browsers, done)
        threads.append(threading.Thread(target=loop, daemon=True))
    for thread in threads:
        thread.start()
    try:
        day = load(
            identities=browsers,
            duration_s=seconds,
            plans=plans(len(browsers), seconds),
            speech=speech,
            speech_every=SPEECH_EVERY,
        )
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    if None in snapshot_at:
        memory_trace.snapshot_now(web, snapshots)
    cpu = {
        'web': cpu_seconds(web) - cpu_before['web'],
        'workers': total_cpu_seconds(workers) - cpu_before['workers'],
    }
    return DayResult(day, samples, listening, cpu)


def _listen(
    listener: Listener,
    rng: random.Random,
    listening: Listening,
    browsers: list[str],
    done: threading.Event,
) -> Callable[[], None]:
    def loop() -> None:
        while not done.wait(rng.uniform(*LISTENER_PAUSE_S)):
            listener.act(rng, listening, rng.choice(browsers))

    return loop


def _sample(workspace: Path, web: psutil.Process, samples: Samples, done: threading.Event) -> None:
    services = open_services(workspace)
    started = time.monotonic()
    waiting = [TranscriptState.QUEUED, TranscriptState.TRANSCRIBING]
    try:
        while not done.wait(SAMPLE_EVERY_S):
            at = time.monotonic() - started
            samples.web_rss_mb.append((at, rss_mb(web)))
            samples.web_threads.append((at, web.num_threads()))
            samples.web_files.append((at, web.num_fds()))
            with services.database.session() as session:
                queued = session.exec(select(Transcript.recording_id).where(col(Transcript.state).in_(waiting))).all()
            samples.backlog.append((at, len(queued)))
    finally:
        services.close()


def _lost_of_day(workspace: Path, day: LoadResult) -> int:
    """Chunks of finished recordings missing from their playable file, plus acknowledged chunks of the others
    missing from storage."""
    services = open_services(workspace)
    lost = 0
    try:
        with services.database.session() as session:
            for recording_id, count in day.finalized.items():
                recording = session.get(Recording, uuid.UUID(recording_id))
                whole = (
                    recording is not None
                    and is_playable(recording.status)
                    and recording.assembled_chunks == count
                    and services.storage.exists(recording_audio_key(recording))
                )
                lost += 0 if whole else count
    finally:
        services.close()
    unfinished = {rid: seqs for rid, seqs in day.acked_seqs.items() if rid not in day.finalized}
    return lost + count_lost(workspace, unfinished)


@dataclass
class TranscriptLags:
    lags_s: list[float]  # queued (at Stop) → done, of the day's recordings whose transcript is done
    not_done: int  # the day's finished recordings still without a transcript when the window ended
    failed: int
    speech_s: float  # speech transcribed in the window, in seconds of audio


def _transcript_lags(workspace: Path, day: LoadResult) -> TranscriptLags:
    services = open_services(workspace)
    lags, not_done, failed = [], 0, 0
    speech_s = 0.0
    try:
        with services.database.session() as session:
            ids = [uuid.UUID(rid) for rid in day.finalized]
            query = select(Transcript, Recording.duration_ms).join(Recording).where(col(Recording.id).in_(ids))
            rows = session.exec(query).all()
            for transcript, duration_ms in rows:
                if transcript.state == TranscriptState.DONE:
                    lags.append((transcript.updated_at - transcript.queued_at).total_seconds())
                    speech_s += (duration_ms or 0) / 1000 if transcript.text else 0.0
                elif transcript.state == TranscriptState.FAILED:
                    failed += 1
                else:
                    not_done += 1
            not_done += len(ids) - len(rows)
    finally:
        services.close()
    return TranscriptLags(lags, not_done, failed, speech_s)


def _grows(backlog: list[tuple[float, int]]) -> str:
    """The backlog's trend: its mean over the last third against the second third of the window."""
    if len(backlog) < 6:
        return 'too short to tell'
    third = len(backlog) // 3
    middle = sum(v for _, v in backlog[third : 2 * third]) / third
    last = sum(v for _, v in backlog[2 * third :]) / (len(backlog) - 2 * third)
    verdict = 'grows' if last > middle + 2 else 'does not grow'
    return (
        f'{verdict} (mean {middle:.1f} in the middle third, {last:.1f} in the last; most {max(v for _, v in backlog)})'
    )


@dataclass
class DayResult:
    load: LoadResult
    samples: Samples
    listening: Listening
    cpu: dict[str, float]  # CPU seconds of the web process and of the workers


def _goals_met(day: LoadResult) -> bool:
    return day.p99_ms < 200 and percentile(day.stop_ms, 0.95) < 2000 and not day.failed and not day.stop_failures


def _row(
    recorders: int,
    result: DayResult,
    transcripts: TranscriptLags,
    lost: int,
    seconds: int,
    alone: LoadResult | None = None,
) -> Row:
    day, samples, listening, cpu = result.load, result.samples, result.listening, result.cpu
    pages = listening.times.get('page', [])
    actions = ', '.join(
        f'{action} median {median(times):.0f} / p95 {percentile(times, 0.95):.0f} ms'
        for action, times in sorted(listening.times.items())
    )
    lags = transcripts.lags_s
    return Row(
        '10 day',
        f'{recorders} recorders (1 in {SPEECH_EVERY} speaking) recording, stopping and starting again for '
        f'{seconds / 60:.0f} min; {LISTENERS} listeners; embedded workers (Whisper base)',
        f'ingest p50 {day.p50_ms:.1f} / p99 **{day.p99_ms:.0f} ms**; Stop → playable p95 '
        f'**{percentile(day.stop_ms, 0.95) / 1000:.2f} s** ({len(day.stop_ms)} Stops); transcript after Stop p50 '
        f'{median(lags):.0f} s / p95 {percentile(lags, 0.95):.0f} s, backlog {_grows(samples.backlog)}; '
        f'/records p95 **{percentile(pages, 0.95):.0f} ms**; **{lost} lost**',
        f'the same recorders alone: p50 {alone.p50_ms:.1f} / p99 {alone.p99_ms:.0f} ms' if alone else '',
        f'goals: p99 < 200 ms, Stop → playable p95 < 2 s, backlog not growing, 0 lost; '
        f'CPU web {100 * cpu["web"] / seconds:.0f} %, workers {100 * cpu["workers"] / seconds:.0f} % of one core; '
        f'{transcripts.speech_s / 60:.0f} min of speech transcribed, {transcripts.not_done} transcripts not done at '
        f'the end, {transcripts.failed} failed; {day.failed} chunks unacknowledged, {len(day.stop_failures)} Stops '
        f'failed{_first(day.stop_failures)}; listeners: {actions}; {len(listening.failures)} listener errors'
        f'{_first(listening.failures)}; generator CPU {day.generator_cpu_pct:.0f} %',
    )


def _memory_row(samples: Samples, seconds: int) -> Row:
    """RSS, threads and open files of the web process from minute 10 (or the first third) to the end."""
    rss, threads, files = samples.web_rss_mb, samples.web_threads, samples.web_files
    if not rss:
        return Row('10 day', 'memory', 'no samples', '', '')
    start = next((i for i, (at, _) in enumerate(rss) if at >= memory_start_s(seconds)), 0)
    first, last = rss[start][1], rss[-1][1]
    trace = ', '.join(f'{at / 60:.0f}: {mb:.0f}' for at, mb in rss[start::4])
    return Row(
        '10 day',
        f'web process memory from minute {rss[start][0] / 60:.0f} to {rss[-1][0] / 60:.0f}',
        f'RSS {first:.0f} → {last:.0f} MB (**{100 * (last - first) / first:+.1f} %**); threads '
        f'{threads[start][1]} → {threads[-1][1]}; open files {files[start][1]} → {files[-1][1]}',
        '',
        f'goal: < 5 % growth, threads and files flat; RSS by minute: {trace}',
    )


def snapshot_folder(workspace: Path) -> Path:
    return workspace / 'snapshots'


def memory_start_s(seconds: int) -> float:
    """Where growth is measured from: minute 10, or a third into a shorter window (start-up is done by then)."""
    return min(600, seconds / 3)


def _first(failures: list[str]) -> str:
    return f' (first: {failures[0][:160]})' if failures else ''
