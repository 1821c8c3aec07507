"""kill -9 at random points: nothing acknowledged is lost, nothing is left stuck once the client has done its part.

A client acts like the browser over the REST API: it keeps every chunk until it has a 2xx answer, and after a
restart it resends the rest and finalizes until the recording is ready. The server is the real app on SQLite and a
local folder, SIGKILLed while chunks are being stored or while recordings are being finalized. The kill points come
from a seeded generator and are printed, so a failing run can be replayed (CRASH_TEST_SEED=<seed>).
"""

import os
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select, update

from services.audio.ffmpeg import remux
from services.audio.formats import audio_format
from services.core.database import Database
from services.core.models import Chunk, Recording, RecordingStatus, utc_now
from services.recordings.finalize import FINALIZE_TAKEOVER
from services.storage.keys import audio_key, chunk_key
from services.storage.local import LocalStorage
from tests.support.app_server import AppServer, free_port
from tests.support.audio_samples import decoded_sha256, live_webm, speech_wav, split
from tests.support.threads import run_together

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('crash_consistency')

# Every run draws new kill points (printed with the seed), so the points tried grow with each CI run, as the fuzzer's
# examples do; ten rounds a run keep this test, the suite's costliest, at about 45 CPU-s.
SEED = int(os.environ.get('CRASH_TEST_SEED') or random.SystemRandom().randrange(2**32))
ROUNDS = 10
FINALIZE_EVERY = 3  # every third round kills during finalize, the others during chunk upload
RECORDINGS_PER_ROUND = 3
SENDERS_PER_RECORDING = 2
CHUNKS = 20
DURATION_TOLERANCE_MS = 500
KILLS = {'chunk upload': ROUNDS - ROUNDS // FINALIZE_EVERY, 'finalize': ROUNDS // FINALIZE_EVERY}
# No speech-to-text worker competing for the CPU; a round's three recordings are saved at once after a restart (the
# per-user cap on saves is tested in test_no_stall).
APP_ENV = {'VR_TRANSCRIBE': 'false', 'VR_MAX_FINALIZES_PER_USER': str(RECORDINGS_PER_ROUND)}
SWEEPER_ENV = {'VR_STALE_RECORDING_S': '2', 'VR_SWEEP_INTERVAL_S': '1'}
TRANSPORT_ERRORS = (httpx.TransportError,)  # the server died under the request: no answer, no acknowledgement


@dataclass(frozen=True)
class Reference:
    """The whole recording, remuxed here: what every final file must decode to, sample for sample."""

    pieces: list[bytes]
    duration_ms: int
    pcm_sha256: str


@pytest.fixture(scope='module')
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    folder = tmp_path_factory.mktemp('audio-20s')
    webm = live_webm(speech_wav(folder / 'speech-20s.wav', 20.0), folder / 'speech-20s.webm')
    remuxed = folder / 'remuxed.webm'
    duration_ms = remux(folder / 'speech-20s.webm', remuxed, audio_format('audio/webm'))
    return Reference(split(webm, len(webm) // CHUNKS + 1), duration_ms, decoded_sha256(remuxed))


def ffprobe_errors(path: Path) -> str:
    run = subprocess.run(['ffprobe', '-v', 'error', str(path)], capture_output=True, check=False)
    return f'exit {run.returncode}: {run.stderr.decode(errors="replace")}' if run.returncode or run.stderr else ''


class Browser:
    """What the recorder page does over the REST API, for one user."""

    def __init__(self, base_url: str, user_id: str, token: str) -> None:
        self.base_url, self.user_id = base_url, user_id
        self.headers = {'Authorization': f'Bearer {token}'}
        self.local = threading.local()  # one connection pool per thread

    @property
    def http(self) -> httpx.Client:
        if not hasattr(self.local, 'client'):
            self.local.client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30)
        return self.local.client

    def create(self) -> str:
        answer = self.http.post('/api/recordings', json={'mime_type': 'audio/webm;codecs=opus'})
        assert answer.status_code == 201, answer.text
        return str(answer.json()['id'])

    def put(self, recording_id: str, seq: int, data: bytes) -> httpx.Response:
        headers = {'Content-Type': 'application/octet-stream'}
        return self.http.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=data, headers=headers)

    def finalize(self, recording_id: str) -> httpx.Response:
        return self.http.post(f'/api/recordings/{recording_id}/finalize')

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url)


@dataclass
class Upload:
    """One recording as the browser holds it: which chunks the server acknowledged (a 2xx answer)."""

    id: str
    acked: set[int] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)  # any other answer while the server was up: never expected
    finalize_answer: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unacked(self) -> list[int]:
        return [seq for seq in range(CHUNKS) if seq not in self.acked]


def send(browser: Browser, upload: Upload, seqs: list[int], pieces: list[bytes]) -> None:
    """Send in order until the server dies; only a 2xx answer counts as acknowledged."""
    for seq in seqs:
        try:
            answer = browser.put(upload.id, seq, pieces[seq])
        except TRANSPORT_ERRORS:
            return
        with upload.lock:
            if answer.is_success:
                upload.acked.add(seq)
            else:
                upload.refused.append(f'chunk {seq}: {answer.status_code} {answer.text}')


def finalize_once(browser: Browser, upload: Upload) -> None:
    try:
        upload.finalize_answer = browser.finalize(upload.id).status_code
    except TRANSPORT_ERRORS:
        upload.finalize_answer = None


def senders(browser: Browser, upload: Upload, pieces: list[bytes]) -> list[threading.Thread]:
    """Two senders per recording, each in seq order, so a recording's chunks are in flight together."""
    return [
        threading.Thread(target=send, args=(browser, upload, list(range(first, CHUNKS, SENDERS_PER_RECORDING)), pieces))
        for first in range(SENDERS_PER_RECORDING)
    ]


class App:
    """The app on one data folder and port, restarted in place after each kill."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir, self.env, self.port = data_dir, {**APP_ENV, **(env or {})}, free_port()
        self.server = AppServer(data_dir, port=self.port, env=self.env).start()
        self.database = Database(f'sqlite:///{data_dir / "voice-recorder.db"}')
        self.storage = LocalStorage(data_dir / 'audio')

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server = AppServer(self.data_dir, port=self.port, env=self.env).start()

    def stop(self) -> None:
        self.server.stop()
        self.database.dispose()

    def status(self, recording_id: str) -> RecordingStatus:
        with self.database.session() as session:
            recording = session.get(Recording, uuid.UUID(recording_id))
        assert recording is not None
        return recording.status

    def stored_chunks(self, recording_id: str) -> dict[int, str]:
        with self.database.session() as session:
            query = select(Chunk.seq, Chunk.sha256).where(col(Chunk.recording_id) == uuid.UUID(recording_id))
            return dict(session.exec(query).all())

    def expire_claim(self, recording_id: str) -> None:
        """Age a dead process's finalize claim past FINALIZE_TAKEOVER: the wait the takeover rule imposes today."""
        aged = utc_now() - FINALIZE_TAKEOVER - timedelta(seconds=1)
        statement = update(Recording).where(col(Recording.id) == uuid.UUID(recording_id)).values(updated_at=aged)
        with self.database.session() as session:
            session.exec(statement)  # type: ignore[call-overload]
            session.commit()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    started = App(tmp_path / 'data')
    yield started
    started.stop()


def onboard(app: App) -> Browser:
    answer = httpx.post(f'{app.server.url}/api/onboard', json={'name': 'Crash'}, timeout=30)
    assert answer.status_code == 201, answer.text
    return Browser(app.server.url, answer.json()['user_id'], answer.json()['token'])


def assert_acknowledged_chunks_are_durable(app: App, upload: Upload, pieces: list[bytes]) -> int:
    """Right after the kill, before any restart: every acknowledged chunk has its row and its bytes on disk (a
    recording that became ready holds them in its file instead). Returns how many chunks were stored although
    their answer never arrived."""
    if app.status(upload.id) == RecordingStatus.READY:
        assert (app.storage.root / audio_key(uuid.UUID(upload.id), 'webm')).is_file(), f'{upload.id} has no file'
        return 0
    stored = app.stored_chunks(upload.id)
    for seq in upload.acked:
        assert seq in stored, f'chunk {seq} of {upload.id} was acknowledged but has no row after the kill'
        key = chunk_key(uuid.UUID(upload.id), seq, stored[seq])
        assert (app.storage.root / key).read_bytes() == pieces[seq], f'chunk {seq} of {upload.id} lost its bytes'
    return len(set(stored) - upload.acked)


def assert_no_acknowledged_chunk_is_missing(upload: Upload, answer: httpx.Response) -> None:
    if answer.status_code == 409 and 'missing' in answer.json():
        missing = set(answer.json()['missing'])
        assert not missing & upload.acked, (
            f'{upload.id}: acknowledged chunks reported missing: {missing & upload.acked}'
        )


def finalize_until_ready(browser: Browser, upload: Upload, timeout_s: float = 30) -> dict[str, Any]:
    """As the browser does: a busy server (503) or a user saving too many at once (429) is asked again; anything
    else but ready fails the test."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = browser.finalize(upload.id)
        assert_no_acknowledged_chunk_is_missing(upload, answer)
        if answer.status_code == 200:
            assert answer.json()['status'] == 'ready', answer.text
            return dict(answer.json())
        assert answer.status_code in (429, 503), f'{upload.id}: finalize answered {answer.status_code} {answer.text}'
        assert time.monotonic() < deadline, f'{upload.id} stayed busy for {timeout_s} s: {answer.text}'
        time.sleep(0.1)


def recover(browser: Browser, upload: Upload, pieces: list[bytes]) -> dict[str, Any]:
    """After the restart: the last chunk first, so finalize can name every gap, then the rest, then finalize."""
    unacked = upload.unacked()
    if unacked:
        if CHUNKS - 1 in unacked:
            answer = browser.put(upload.id, CHUNKS - 1, pieces[CHUNKS - 1])
            assert answer.is_success, f'{upload.id}: resending the last chunk: {answer.status_code} {answer.text}'
        probe = browser.finalize(upload.id)
        while probe.status_code == 429:  # this user saves other recordings right now: the browser asks again
            time.sleep(0.1)
            probe = browser.finalize(upload.id)
        assert probe.status_code in (200, 409), f'{upload.id}: finalize with gaps: {probe.status_code} {probe.text}'
        assert_no_acknowledged_chunk_is_missing(upload, probe)
        if probe.status_code == 409:
            assert set(probe.json()['missing']) <= set(unacked), probe.text
            for seq in unacked:
                answer = browser.put(upload.id, seq, pieces[seq])
                assert answer.is_success, f'{upload.id}: resending chunk {seq}: {answer.status_code} {answer.text}'
    return finalize_until_ready(browser, upload)


def assert_holds_the_whole_recording(
    browser: Browser, ready: dict[str, Any], reference: Reference, folder: Path
) -> None:
    assert abs(ready['duration_ms'] - reference.duration_ms) <= DURATION_TOLERANCE_MS, ready
    download = browser.get(ready['audio_url'])
    assert download.status_code == 200, download.text
    path = folder / f'{ready["id"]}.webm'
    path.write_bytes(download.content)
    assert ffprobe_errors(path) == ''
    assert decoded_sha256(path) == reference.pcm_sha256, f'{ready["id"]} does not hold every chunk of the recording'


def recover_and_check(browser: Browser, upload: Upload, reference: Reference, folder: Path) -> None:
    assert_holds_the_whole_recording(browser, recover(browser, upload, reference.pieces), reference, folder)


@dataclass
class Stats:
    durations: dict[str, float] = field(default_factory=dict)  # of an unkilled round, by what is killed
    kill_points: dict[str, list[float]] = field(default_factory=dict)  # fractions of those, still to use
    kills: Counter[str] = field(default_factory=Counter)
    chunks: Counter[str] = field(default_factory=Counter)
    finalizes: Counter[str] = field(default_factory=Counter)


@dataclass
class Round:
    uploads: list[Upload]
    finalizing: list[Upload]  # complete before the round starts: the round finalizes them
    threads: list[threading.Thread]

    def run(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


def prepare_round(browser: Browser, reference: Reference, during_finalize: bool) -> Round:
    """Three new recordings: all three uploading, or (during finalize) two finalizing while one uploads."""
    uploads = [Upload(browser.create()) for _ in range(RECORDINGS_PER_ROUND)]
    finalizing = uploads[:2] if during_finalize else []
    run_together(*[partial(send, browser, upload, list(range(CHUNKS)), reference.pieces) for upload in finalizing])
    for upload in finalizing:
        assert upload.acked == set(range(CHUNKS)) and not upload.refused, upload
    uploading = [upload for upload in uploads if upload not in finalizing]
    threads = [thread for upload in uploading for thread in senders(browser, upload, reference.pieces)]
    threads += [threading.Thread(target=finalize_once, args=(browser, upload)) for upload in finalizing]
    return Round(uploads, finalizing, threads)


def spread(rng: random.Random, count: int) -> list[float]:
    """`count` random fractions of a round, one in each equal slice of 0..110 %, in random order: every phase of
    the work gets its kills, and some land just after it ended."""
    fractions = [(slot + rng.random()) * 1.1 / count for slot in range(count)]
    rng.shuffle(fractions)
    return fractions


def calibrate(browser: Browser, reference: Reference) -> dict[bool, tuple[float, list[Upload]]]:
    """How long each kind of round takes on this machine when nothing is killed: kill points are drawn as a
    fraction of it, so they fall inside the work on a fast machine and a slow one alike."""
    measured = {}
    for during_finalize in (False, True):
        unkilled = prepare_round(browser, reference, during_finalize)
        started = time.monotonic()
        unkilled.run()
        unkilled.join()
        measured[during_finalize] = (time.monotonic() - started, unkilled.uploads)
    return measured


def run_round(
    number: int, rng: random.Random, app: App, browser: Browser, reference: Reference, stats: Stats
) -> list[Upload]:
    during_finalize = number % FINALIZE_EVERY == FINALIZE_EVERY - 1
    path = 'finalize' if during_finalize else 'chunk upload'
    fraction = stats.kill_points[path].pop()
    delay_s = fraction * stats.durations[path]
    round_ = prepare_round(browser, reference, during_finalize)
    round_.run()
    time.sleep(delay_s)
    app.kill()
    round_.join()
    stats.kills[path] += 1
    print(f'round {number}: SIGKILL {delay_s * 1000:.0f} ms into {path} ({fraction:.0%} of an unkilled round)')
    record_kill_point(app, round_.uploads, round_.finalizing, reference, stats)
    return round_.uploads


def record_kill_point(
    app: App, uploads: list[Upload], finalizing: list[Upload], reference: Reference, stats: Stats
) -> None:
    """What the kill interrupted, read from the dead server's files; a dead claim is aged past the takeover time."""
    for upload in uploads:
        assert not upload.refused, f'{upload.id}: the live server refused chunks: {upload.refused}'
        answer_lost = assert_acknowledged_chunks_are_durable(app, upload, reference.pieces)
        status = app.status(upload.id)
        if upload in finalizing:
            stats.finalizes[f'killed with the recording {status.value}'] += 1
            print(f'  {upload.id}: finalize answered {upload.finalize_answer}, recording {status.value} after the kill')
            if status == RecordingStatus.FINALIZING:
                app.expire_claim(upload.id)
            continue
        stats.chunks['acknowledged'] += len(upload.acked)
        stats.chunks['stored, answer lost'] += answer_lost
        stats.chunks['not stored'] += CHUNKS - len(upload.acked) - answer_lost
        print(f'  {upload.id}: {len(upload.acked)} acknowledged, {answer_lost} stored without an answer')


def test_after_kill_9_at_random_points_every_acknowledged_chunk_is_in_a_ready_recording(
    app: App, reference: Reference, tmp_path: Path
) -> None:
    print(f'seed {SEED} (replay with CRASH_TEST_SEED={SEED})')
    rng, stats = random.Random(SEED), Stats()
    browser = onboard(app)
    calibrated = calibrate(browser, reference)
    stats.durations = {'chunk upload': calibrated[False][0], 'finalize': calibrated[True][0]}
    print(f'an unkilled round takes {stats.durations}')
    stats.kill_points = {path: spread(rng, count) for path, count in KILLS.items()}
    unkilled = calibrated[False][1] + calibrated[True][1]
    run_together(*[partial(recover_and_check, browser, upload, reference, tmp_path) for upload in unkilled])
    for number in range(ROUNDS):
        uploads = run_round(number, rng, app, browser, reference, stats)
        app.restart()
        run_together(*[partial(recover_and_check, browser, upload, reference, tmp_path) for upload in uploads])
    print(f'kills: {dict(stats.kills)}; chunks: {dict(stats.chunks)}; finalizes: {dict(stats.finalizes)}')
    listed = browser.get(f'/api/records/{browser.user_id}?limit=200').json()
    made = (ROUNDS + 2) * RECORDINGS_PER_ROUND
    assert Counter(item['status'] for item in listed) == {'ready': made}, 'none left stuck'
    assert stats.kills == Counter(KILLS)


def kill_inside_a_finalize(app: App, browser: Browser, reference: Reference) -> Upload:
    """SIGKILL the server between a finalize's claim and its end: assembly runs ffmpeg twice, long enough for a
    database poll to see the claim (status `finalizing`) every time; a miss is retried on a new recording."""
    for _attempt in range(3):
        upload = Upload(browser.create())
        send(browser, upload, list(range(CHUNKS)), reference.pieces)
        if upload.acked != set(range(CHUNKS)):
            pytest.fail(f'the upload before the finalize failed: {upload}')
        finalize = threading.Thread(target=finalize_once, args=(browser, upload))
        finalize.start()
        deadline = time.monotonic() + 20
        while app.status(upload.id) == RecordingStatus.RECORDING and time.monotonic() < deadline:
            time.sleep(0.002)
        app.kill()
        finalize.join()
        if app.status(upload.id) == RecordingStatus.FINALIZING:
            return upload
        app.restart()
    pytest.fail('three kills missed the finalize between its claim and its end')


def wait_until_ready(browser: Browser, upload: Upload, timeout_s: float) -> dict[str, Any]:
    """Watch the recording without finalizing it: only the server's own sweeper may finish it."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = browser.get(f'/api/recordings/{upload.id}').json()
        if seen['status'] == 'ready' or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    busy = browser.finalize(upload.id) if seen['status'] != 'ready' else None
    assert seen['status'] == 'ready', (
        f'{upload.id} is still {seen["status"]} {timeout_s} s after the restart '
        f'(the client finalize answers {busy and busy.status_code}: {busy and busy.text})'
    )
    return dict(seen)


@pytest.fixture
def sweeping_app(tmp_path: Path) -> Iterator[App]:
    started = App(tmp_path / 'data', env=SWEEPER_ENV)
    yield started
    started.stop()


def test_a_finalize_killed_after_its_claim_is_finished_by_the_sweeper_soon_after_restart(
    sweeping_app: App, reference: Reference, tmp_path: Path
) -> None:
    browser = onboard(sweeping_app)
    upload = kill_inside_a_finalize(sweeping_app, browser, reference)
    sweeping_app.restart()
    # The dead claim is no longer renewed: once FINALIZE_TAKEOVER has passed, the sweeper (idle after 2 s, every 1 s)
    # takes it over. A live finalize renews its claim every few seconds, so it is never taken from under it.
    ready = wait_until_ready(browser, upload, timeout_s=FINALIZE_TAKEOVER.total_seconds() + 15)
    assert_holds_the_whole_recording(browser, ready, reference, tmp_path)
    again = finalize_until_ready(browser, upload)  # the browser's own finalize, arriving late, agrees
    assert_holds_the_whole_recording(browser, again, reference, tmp_path)
