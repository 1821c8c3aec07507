"""Races between writers of one recording, with threads and with two app instances on one PostgreSQL.

The promise under test: a chunk is acknowledged only if it is part of the final file, conflicting uploads of one
chunk never both count, and a deleted recording leaves nothing behind whoever was writing to it at the time. Each
check compares the final file, decoded, with the acknowledged chunks remuxed here, so one lost chunk fails it.
"""

import contextlib
import hashlib
import io
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from services.audio.ffmpeg import remux
from services.audio.formats import audio_format
from services.container import Services, build_services
from services.core.config import Settings
from services.core.errors import AppError, Busy, Conflict, MissingChunks
from services.core.models import Chunk, Recording, RecordingStatus, Share
from services.recordings.chunks import ChunkReceipt
from services.recordings.service import recording_audio_key
from services.storage.keys import chunk_key, chunks_prefix, recording_prefix
from services.storage.protocol import Storage
from services.storage.s3 import S3Storage
from tests.conftest import UserFactory, fresh_bucket, settings_env, stored_keys
from tests.support.app_server import AppServer
from tests.support.audio_samples import WEBM_MAGIC, decoded_sha256, split
from tests.support.postgres_server import PostgresServer
from tests.support.s3_server import S3Server
from tests.support.threads import run_together

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('races')

SEED = 20251130
LOCAL = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
CHUNKS = 40
SENDERS = 8
DUPLICATE_SENDERS = 16
WEBM = audio_format('audio/webm')


@pytest.fixture
def pieces(webm_5s: bytes) -> list[bytes]:
    parts = split(webm_5s, len(webm_5s) // CHUNKS + 1)
    assert parts[0].startswith(WEBM_MAGIC) and len(parts[-1]) > 1
    return parts


def spread(rng: random.Random, count: int, longest_s: float) -> list[float]:
    """`count` random delays, one in each equal slice of 0..`longest_s`, in random order."""
    delays = [(slot + rng.random()) * longest_s / count for slot in range(count)]
    rng.shuffle(delays)
    return delays


@dataclass(frozen=True)
class Audio:
    duration_ms: int
    pcm_sha256: str


def expected_audio(chunks: list[bytes], folder: Path) -> Audio:
    """What finalize must make of exactly these chunks: joined in seq order, stream-copied into a new file."""
    name = uuid.uuid4().hex
    joined, output = folder / f'{name}-joined.webm', folder / f'{name}-expected.webm'
    joined.write_bytes(b''.join(chunks))
    return Audio(remux(joined, output, WEBM), decoded_sha256(output))


def assert_same_audio(path: Path, duration_ms: int | None, expected: Audio) -> None:
    assert duration_ms is not None and abs(duration_ms - expected.duration_ms) <= 500, (duration_ms, expected)
    assert decoded_sha256(path) == expected.pcm_sha256, f'{path} does not hold exactly the acknowledged chunks'


@dataclass
class Outcomes:
    """What each chunk's sender was told, in the end."""

    acked: set[int] = field(default_factory=set)
    busy: int = 0  # retryable refusals (the recording was being finalized), sent again
    refused: dict[int, str] = field(default_factory=dict)  # seq -> why, once the recording was finished
    lock: threading.Lock = field(default_factory=threading.Lock)


class SeqQueue:
    """Seqs handed out in order to several senders, as a browser with many chunks in flight sends them."""

    def __init__(self, seqs: range) -> None:
        self._seqs = iter(seqs)
        self._lock = threading.Lock()

    def next(self) -> int | None:
        with self._lock:
            return next(self._seqs, None)


# --- threads, service level -------------------------------------------------------------------------------------


def send_once(services: Services, user_id: uuid.UUID, recording: Recording, seq: int, data: bytes) -> str:
    try:
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=data)
        return 'acked'
    except Busy:
        return 'busy'
    except Conflict as error:
        return f'conflict: {error.message}'


def chunk_sender(
    services: Services, user_id: uuid.UUID, recording: Recording, pieces: list[bytes], queue: SeqQueue, out: Outcomes
) -> Callable[[], None]:
    """The browser's loop: `Busy` means send the same chunk again; a receipt or `Conflict` is its answer."""

    def send() -> None:
        deadline = time.monotonic() + 30
        seq = queue.next()
        while seq is not None:
            answer = send_once(services, user_id, recording, seq, pieces[seq])
            with out.lock:
                if answer == 'busy':
                    out.busy += 1
                elif answer == 'acked':
                    out.acked.add(seq)
                else:
                    out.refused[seq] = answer
            if answer == 'busy':
                assert time.monotonic() < deadline, f'chunk {seq} stayed busy for 30 s'
                time.sleep(0.005)
                continue
            seq = queue.next()

    return send


def finalize_after(services: Services, user_id: uuid.UUID, recording: Recording, delay_s: float) -> Callable[[], None]:
    """Finalize as soon as the chunks seen have no gap (chunk_count unknown); a busy or gapped answer is retried."""

    def finalize() -> None:
        time.sleep(delay_s)
        deadline = time.monotonic() + 30
        while True:
            try:
                services.finalizer.finalize(user_id=user_id, recording_id=recording.id, chunk_count=None)
                return
            except (MissingChunks, Busy):
                assert time.monotonic() < deadline, 'finalize never got a complete set of chunks'
                time.sleep(0.001)

    return finalize


@LOCAL
def test_every_chunk_acknowledged_while_a_finalize_runs_is_in_the_final_file(
    services: Services, make_user: UserFactory, pieces: list[bytes], tmp_path: Path
) -> None:
    user_id = make_user('Racer').id
    for round_number, delay_s in enumerate(spread(random.Random(SEED), 6, 0.06)):
        recording = services.recordings.create(user_id=user_id, mime_type='audio/webm;codecs=opus')
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=pieces[0])
        out, queue = Outcomes(acked={0}), SeqQueue(range(1, len(pieces)))
        senders = [chunk_sender(services, user_id, recording, pieces, queue, out) for _ in range(SENDERS)]
        run_together(*senders, finalize_after(services, user_id, recording, delay_s))

        final = services.recordings.get(user_id=user_id, recording_id=recording.id)
        print(
            f'round {round_number}: finalize after {delay_s * 1000:.0f} ms; {len(out.acked)} chunks acknowledged, '
            f'{out.busy} busy answers, {len(out.refused)} refused after ready'
        )
        assert final.status == RecordingStatus.READY
        assert set(out.acked) | set(out.refused) == set(range(len(pieces))), 'every chunk got an answer'
        assert sorted(out.acked) == list(range(len(out.acked))), 'the file runs from chunk 0 with no gap'
        assert final.assembled_chunks == len(out.acked), 'the file holds exactly the acknowledged chunks'
        path = tmp_path / f'{recording.id}.webm'
        with path.open('wb') as handle:
            services.storage.copy_to(recording_audio_key(final), handle)
        assert_same_audio(path, final.duration_ms, expected_audio([pieces[seq] for seq in sorted(out.acked)], tmp_path))
        assert stored_keys(services.storage, chunks_prefix(recording.id)) == [], 'no chunk object outlives finalize'


class HeldInsert:
    """Holds the transaction of the next chunk insert open right after its INSERT ran, as a slow commit would: the
    moment a finalize that does not wait for it would assemble without an acknowledged chunk."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.inserted, self.release = threading.Event(), threading.Event()

    def __enter__(self) -> 'HeldInsert':
        event.listen(self.engine, 'after_cursor_execute', self._after)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release.set()
        event.remove(self.engine, 'after_cursor_execute', self._after)

    def _after(self, _connection: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith('INSERT INTO CHUNK') and not self.inserted.is_set():
            self.inserted.set()
            self.release.wait(30)


@LOCAL
def test_a_chunk_still_being_committed_when_finalize_begins_is_waited_for_and_kept(
    services: Services, make_user: UserFactory, pieces: list[bytes], tmp_path: Path
) -> None:
    user_id = make_user('Waiter').id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    last = len(pieces) - 1
    for seq, piece in enumerate(pieces[:last]):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    answers: dict[str, object] = {}

    def keep(name: str, work: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                answers[name] = work()
            except AppError as error:
                answers[name] = error

        return run

    with HeldInsert(services.database.engine) as held:
        chunk = threading.Thread(
            target=keep(
                'chunk',
                lambda: services.chunks.add_chunk(
                    user_id=user_id, recording_id=recording.id, seq=last, data=pieces[last]
                ),
            )
        )
        chunk.start()
        assert held.inserted.wait(30)
        finalize = threading.Thread(
            target=keep('finalize', lambda: services.finalizer.finalize(user_id=user_id, recording_id=recording.id))
        )
        finalize.start()
        finalize.join(timeout=0.5)  # long enough for a finalize that does not wait to read its chunks
        held.release.set()
        chunk.join()
        finalize.join()

    assert isinstance(answers['chunk'], ChunkReceipt), answers
    final = services.recordings.get(user_id=user_id, recording_id=recording.id)
    assert (final.status, final.assembled_chunks) == (RecordingStatus.READY, len(pieces)), answers
    path = tmp_path / 'final.webm'
    with path.open('wb') as handle:
        services.storage.copy_to(recording_audio_key(final), handle)
    assert_same_audio(path, final.duration_ms, expected_audio(pieces, tmp_path))


@LOCAL
def test_a_chunk_that_lands_between_the_first_look_and_the_claim_never_makes_a_file_with_a_gap(
    services: Services, make_user: UserFactory, pieces: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalize looks at the chunks, then claims the recording: a chunk past a gap that lands in between must send
    the client back for the missing one, not into a file that skips it."""
    user_id = make_user('Gap').id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=pieces[0])
    claim = services.finalizer._claim

    def claim_after_a_later_chunk_lands(recording_id: uuid.UUID, now: object) -> bool:
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=2, data=pieces[2])
        return claim(recording_id, now)  # type: ignore[arg-type]

    monkeypatch.setattr(services.finalizer, '_claim', claim_after_a_later_chunk_lands)
    with pytest.raises(MissingChunks) as missing:
        services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
    assert missing.value.details['missing'] == [1]
    monkeypatch.undo()
    assert services.recordings.get(user_id=user_id, recording_id=recording.id).status == RecordingStatus.RECORDING
    services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=1, data=pieces[1])
    final = services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
    assert (final.status, final.assembled_chunks) == (RecordingStatus.READY, 3)


def chunk_row_sha256(services: Services, recording_id: uuid.UUID, seq: int) -> str:
    with services.database.session() as session:
        query = select(Chunk.sha256).where(col(Chunk.recording_id) == recording_id, col(Chunk.seq) == seq)
        return str(session.exec(query).one())


def assert_only_the_accepted_object(storage: Storage, recording_id: uuid.UUID, seq: int, accepted: bytes) -> None:
    """The chunk's key holds the accepted bytes, and the other upload left no object of its own."""
    digest = hashlib.sha256(accepted).hexdigest()
    keys = stored_keys(storage, chunks_prefix(recording_id))
    kept = [key for key in keys if key.rsplit('/', 1)[-1].split('.')[0] == str(seq)]
    assert kept == [chunk_key(recording_id, seq, digest)]
    copy = io.BytesIO()
    storage.copy_to(kept[0], copy)
    assert copy.getvalue() == accepted


def send_together(
    services: Services, user_id: uuid.UUID, recording_id: uuid.UUID, seq: int, versions: list[bytes]
) -> list[tuple[bytes, ChunkReceipt | Conflict]]:
    """One sender per entry of `versions`, all sending `seq` at the same moment; what each was answered."""
    answers: list[tuple[bytes, ChunkReceipt | Conflict]] = []

    def send(data: bytes) -> None:
        try:
            answers.append(
                (data, services.chunks.add_chunk(user_id=user_id, recording_id=recording_id, seq=seq, data=data))
            )
        except Conflict as error:
            answers.append((data, error))

    run_together(*[lambda data=data: send(data) for data in versions])
    return answers


@LOCAL
def test_of_two_different_uploads_of_one_chunk_exactly_one_is_kept(
    services: Services, make_user: UserFactory, pieces: list[bytes], tmp_path: Path
) -> None:
    user_id = make_user('Twins').id
    last = len(pieces) - 1
    first_version, second_version = pieces[last], pieces[last][: len(pieces[last]) // 2]  # both end the file well
    for _round in range(4):
        recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
        for seq, piece in enumerate(pieces[:last]):
            services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
        versions = [second_version if index % 2 else first_version for index in range(DUPLICATE_SENDERS)]
        answers = send_together(services, user_id, recording.id, last, versions)

        accepted = {data for data, answer in answers if isinstance(answer, ChunkReceipt)}
        assert len(answers) == DUPLICATE_SENDERS and len(accepted) == 1, answers
        winner = accepted.pop()
        assert all(isinstance(answer, ChunkReceipt) == (data == winner) for data, answer in answers), answers
        assert sum(isinstance(a, ChunkReceipt) and not a.duplicate for _d, a in answers) == 1, 'one first write only'
        assert chunk_row_sha256(services, recording.id, last) == hashlib.sha256(winner).hexdigest()
        assert_only_the_accepted_object(services.storage, recording.id, last, winner)

        final = services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
        path = tmp_path / f'{recording.id}.webm'
        with path.open('wb') as handle:
            services.storage.copy_to(recording_audio_key(final), handle)
        assert_same_audio(path, final.duration_ms, expected_audio([*pieces[:last], winner], tmp_path))


class Gate:
    """The real storage, except that the first `method` call waits until the test lets it go: the write lands
    exactly when the test wants it, e.g. after a delete that raced it."""

    def __init__(self, inner: Storage, method: str) -> None:
        self.inner, self.method = inner, method
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_file(self, key: str, path: Path) -> None:
        self._hold('put_file')
        self.inner.put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._hold('put_bytes')
        self.inner.put_bytes(key, data)

    def put_many(self, objects: Mapping[str, bytes]) -> None:
        self._hold('put_many')
        self.inner.put_many(objects)

    def _hold(self, method: str) -> None:
        if method == self.method and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), 'the test never let the write go'


@dataclass
class Racer:
    """A writer racing a delete: how to prepare its recording, what it does, and where its write is held."""

    prepare: Callable[[Services, uuid.UUID], uuid.UUID]
    run: Callable[[Services, uuid.UUID, uuid.UUID], object]
    service: str  # the attribute of `Services` whose storage the write goes through
    write: str


def ready_and_shared(services: Services, user_id: uuid.UUID, pieces: list[bytes]) -> uuid.UUID:
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    for seq, piece in enumerate(pieces):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
    services.shares.create(user_id=user_id, recording_id=recording.id, lifetime=timedelta(days=1))
    return recording.id


def uploaded(services: Services, user_id: uuid.UUID, pieces: list[bytes]) -> uuid.UUID:
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    for seq, piece in enumerate(pieces):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    return recording.id


def send_all(
    services: Services, user_id: uuid.UUID, recording_id: uuid.UUID, pieces: list[bytes], senders: int
) -> None:
    """Senders with chunks in flight together, each stopping at its first refusal."""
    queue = SeqQueue(range(1, len(pieces)))

    def send() -> None:
        while (seq := queue.next()) is not None:
            services.chunks.add_chunk(user_id=user_id, recording_id=recording_id, seq=seq, data=pieces[seq])

    run_together(*[outcome_of(send) for _ in range(senders)])


def racers(pieces: list[bytes], chunk_senders: int = 1) -> dict[str, Racer]:
    return {
        'mp3 export': Racer(
            lambda s, u: ready_and_shared(s, u, pieces),
            lambda s, u, r: s.exports.mp3(user_id=u, recording_id=r),
            'exports',
            'put_file',
        ),
        'finalize': Racer(
            lambda s, u: uploaded(s, u, pieces),
            lambda s, u, r: s.finalizer.finalize(user_id=u, recording_id=r),
            'finalizer',
            'put_file',
        ),
        'chunk': Racer(
            lambda s, u: uploaded(s, u, pieces[:1]),
            lambda s, u, r: send_all(s, u, r, pieces, chunk_senders),
            'chunks',
            'put_many',
        ),
    }


def leftovers(services: Services, recording_id: uuid.UUID) -> dict[str, object]:
    """Everything of the recording still stored: rows of every table, and storage objects."""
    with services.database.session() as session:
        found: dict[str, object] = {
            'recording': session.get(Recording, recording_id),
            'chunks': session.exec(select(Chunk).where(col(Chunk.recording_id) == recording_id)).all(),
            'shares': session.exec(select(Share).where(col(Share.recording_id) == recording_id)).all(),
            'objects': stored_keys(services.storage, recording_prefix(recording_id)),
        }
    return {name: value for name, value in found.items() if value}


def outcome_of(work: Callable[[], object]) -> Callable[[], None]:
    """Run `work`; any domain error is an acceptable answer to a racing writer, anything else is not."""

    def run() -> None:
        with contextlib.suppress(AppError):
            work()

    return run


@LOCAL
@pytest.mark.parametrize('racer_name', ['mp3 export', 'finalize', 'chunk'])
def test_a_recording_deleted_just_before_a_writer_writes_leaves_nothing_behind(
    services: Services, make_user: UserFactory, pieces: list[bytes], racer_name: str
) -> None:
    """The worst moment: the writer has checked the recording and is about to write when the delete completes."""
    racer = racers(pieces)[racer_name]
    user_id = make_user('Deleter').id
    owner = getattr(services, racer.service)
    recording_id = racer.prepare(services, user_id)
    gate = owner.storage = Gate(services.storage, racer.write)
    writer = threading.Thread(target=outcome_of(lambda: racer.run(services, user_id, recording_id)))
    writer.start()
    try:
        assert gate.entered.wait(30), f'the {racer_name} never reached its write'
        services.recordings.delete(user_id=user_id, recording_id=recording_id)
    finally:
        gate.release.set()
        writer.join()
        owner.storage = services.storage
    assert leftovers(services, recording_id) == {}


@LOCAL
@pytest.mark.parametrize(
    ('racer_name', 'rounds'),
    [('mp3 export', 4), ('finalize', 4), ('chunk', 30)],
)
def test_a_recording_deleted_at_any_moment_of_a_writer_leaves_nothing_behind(
    services: Services, make_user: UserFactory, pieces: list[bytes], racer_name: str, rounds: int
) -> None:
    racer, rng = racers(pieces, chunk_senders=4)[racer_name], random.Random(SEED)
    user_id = make_user('Deleter').id
    for _round in range(rounds):
        recording_id, delay_s = racer.prepare(services, user_id), rng.uniform(0, 0.2)

        def delete_later(recording_id: uuid.UUID = recording_id, delay_s: float = delay_s) -> None:
            time.sleep(delay_s)
            services.recordings.delete(user_id=user_id, recording_id=recording_id)

        run_together(outcome_of(lambda r=recording_id: racer.run(services, user_id, r)), delete_later)
        assert leftovers(services, recording_id) == {}, f'delete {delay_s * 1000:.0f} ms into the {racer_name}'


# --- two app instances, one PostgreSQL, one bucket --------------------------------------------------------------


@pytest.fixture(scope='module')
def cluster_settings(
    postgres: PostgresServer, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """One database and one bucket for this module's instances; each test works on recordings of its own."""
    database = postgres.create_database()
    yield Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp('cluster') / 'data',
        secret='test-secret-of-at-least-32-characters',
        max_chunk_bytes=64 * 1024,
        database_url=postgres.url(database),
        api_requests_per_minute=1_000_000,  # a race's busy retries are many requests; 429s are not tested here
        **fresh_bucket(s3_server),
    )
    postgres.drop_database(database)


@pytest.fixture(scope='module')
def instances(
    cluster_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppServer, AppServer]]:
    """Two instances as behind a load balancer: one database, one bucket, one secret, a data folder each."""
    env = {name: value for name, value in settings_env(cluster_settings).items() if name != 'VR_DATA_DIR'}
    env['VR_TRANSCRIBE'] = 'false'  # no speech-to-text worker competing for the CPU: these races are about audio
    folder = tmp_path_factory.mktemp('instances')
    servers = (AppServer(folder / 'a' / 'data', env=env), AppServer(folder / 'b' / 'data', env=env))
    try:
        run_together(*[server.start for server in servers])
        yield servers
        logs = [server.log() for server in servers]  # what the races left, before any shutdown noise
    finally:
        for server in servers:
            server.stop()
    assert not any('Traceback' in log for log in logs), logs


class Client:
    """One user of the REST API, talking to one instance; safe to share between threads."""

    def __init__(self, server: AppServer, user_id: str, token: str) -> None:
        self.user_id = uuid.UUID(user_id)
        self.http = httpx.Client(base_url=server.url, headers={'Authorization': f'Bearer {token}'}, timeout=30)

    def put(self, recording_id: str, seq: int, data: bytes) -> httpx.Response:
        headers = {'Content-Type': 'application/octet-stream'}
        return self.http.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=data, headers=headers)

    def finalize(self, recording_id: str) -> httpx.Response:
        return self.http.post(f'/api/recordings/{recording_id}/finalize')


def clients(servers: tuple[AppServer, AppServer]) -> tuple[Client, Client]:
    answer = httpx.post(f'{servers[0].url}/api/onboard', json={'name': 'Two'}, timeout=30)
    assert answer.status_code == 201, answer.text
    user_id, token = answer.json()['user_id'], answer.json()['token']
    return Client(servers[0], user_id, token), Client(servers[1], user_id, token)


def new_recording(client: Client, pieces: list[bytes]) -> str:
    answer = client.http.post('/api/recordings', json={'mime_type': 'audio/webm;codecs=opus'})
    assert answer.status_code == 201, answer.text
    recording_id = str(answer.json()['id'])
    with ThreadPoolExecutor(SENDERS) as pool:
        statuses = list(
            pool.map(lambda seq: client.put(recording_id, seq, pieces[seq]).status_code, range(len(pieces)))
        )
    assert statuses == [200] * len(pieces)
    return recording_id


def api_sender(client: Client, recording_id: str, pieces: list[bytes], queue: SeqQueue, out: Outcomes) -> None:
    """The browser's loop over HTTP: 503 (busy) is sent again, 200 is acknowledged, 409 is final."""
    deadline = time.monotonic() + 30
    seq = queue.next()
    while seq is not None:
        status = client.put(recording_id, seq, pieces[seq]).status_code
        with out.lock:
            if status == 200:
                out.acked.add(seq)
            elif status == 409:
                out.refused[seq] = 'finished'
            else:
                assert status == 503, f'chunk {seq}: {status}'
                out.busy += 1
        if status == 503:
            assert time.monotonic() < deadline, f'chunk {seq} stayed busy for 30 s'
            time.sleep(0.005)
            continue
        seq = queue.next()


def api_finalize(client: Client, recording_id: str, delay_s: float, result: dict[str, Any]) -> None:
    """Finalize on the other instance once the chunks seen have no gap; busy and gapped answers are retried."""
    time.sleep(delay_s)
    deadline = time.monotonic() + 30
    while (answer := client.finalize(recording_id)).status_code != 200:
        assert answer.status_code in (409, 503), answer.text
        assert time.monotonic() < deadline, f'finalize never succeeded: {answer.text}'
        time.sleep(0.002)
    result.update(answer.json())


def download(recording: dict[str, Any], folder: Path) -> Path:
    answer = httpx.get(recording['audio_url'], timeout=30)  # presigned: straight from the bucket
    assert answer.status_code == 200, answer.text
    path = folder / f'{recording["id"]}.webm'
    path.write_bytes(answer.content)
    return path


def test_a_chunk_still_being_committed_by_one_instance_is_waited_for_by_a_finalize_on_another(
    instances: tuple[AppServer, AppServer], cluster_settings: Settings, pieces: list[bytes], tmp_path: Path
) -> None:
    """The test process is a third instance on the same database and bucket, holding one chunk's transaction
    open while instance B finalizes: B must wait for it, and the acknowledged chunk must be in B's file."""
    first, second = clients(instances)
    last = len(pieces) - 1
    recording_id = new_recording(first, pieces[:last])
    third = build_services(cluster_settings)
    answers: dict[str, object] = {}

    def add_last_chunk() -> None:
        answers['chunk'] = third.chunks.add_chunk(
            user_id=first.user_id, recording_id=uuid.UUID(recording_id), seq=last, data=pieces[last]
        )

    def finalize_on_b() -> None:
        answers['finalize'] = second.finalize(recording_id)

    try:
        with HeldInsert(third.database.engine) as held:
            chunk = threading.Thread(target=add_last_chunk)
            chunk.start()
            assert held.inserted.wait(30)
            finalize = threading.Thread(target=finalize_on_b)
            finalize.start()
            finalize.join(timeout=1.0)  # long enough for a finalize that does not wait to read its chunks
            held.release.set()
            chunk.join()
            finalize.join()
    finally:
        third.close()
    assert isinstance(answers.get('chunk'), ChunkReceipt), answers
    finalized = answers['finalize']
    assert isinstance(finalized, httpx.Response) and finalized.status_code == 200, answers
    ready = finalized.json()
    assert_same_audio(download(ready, tmp_path), ready['duration_ms'], expected_audio(pieces, tmp_path))


def test_every_chunk_acknowledged_by_one_instance_while_the_other_finalizes_is_in_the_final_file(
    instances: tuple[AppServer, AppServer], pieces: list[bytes], tmp_path: Path
) -> None:
    receiver, finisher = clients(instances)
    for round_number, delay_s in enumerate(spread(random.Random(SEED), 10, 0.25)):
        recording_id = new_recording(receiver, pieces[:1])
        out, queue, ready = Outcomes(acked={0}), SeqQueue(range(1, len(pieces))), dict[str, Any]()
        run_together(
            *[partial(api_sender, receiver, recording_id, pieces, queue, out) for _ in range(SENDERS)],
            partial(api_finalize, finisher, recording_id, delay_s, ready),
        )
        print(
            f'round {round_number}: finalize on B after {delay_s * 1000:.0f} ms; {len(out.acked)} chunks '
            f'acknowledged by A, {out.busy} busy answers, {len(out.refused)} refused after ready'
        )
        assert set(out.acked) | set(out.refused) == set(range(len(pieces))), 'every chunk got an answer'
        assert sorted(out.acked) == list(range(len(out.acked))), 'the file runs from chunk 0 with no gap'
        expected = expected_audio([pieces[seq] for seq in sorted(out.acked)], tmp_path)
        assert_same_audio(download(ready, tmp_path), ready['duration_ms'], expected)


def api_put(client: Client, recording_id: str, seq: int, data: bytes, answers: list[tuple[bytes, int]]) -> None:
    answers.append((data, client.put(recording_id, seq, data).status_code))


def test_of_two_different_uploads_of_one_chunk_to_two_instances_exactly_one_is_kept(
    instances: tuple[AppServer, AppServer], cluster_settings: Settings, pieces: list[bytes], tmp_path: Path
) -> None:
    first, second = clients(instances)
    bucket = S3Storage(
        bucket=str(cluster_settings.s3_bucket), endpoint_url=cluster_settings.s3_endpoint_url, path_style=True
    )
    last = len(pieces) - 1
    versions = (pieces[last], pieces[last][: len(pieces[last]) // 2])  # both end the file well
    for _round in range(3):
        recording_id = new_recording(first, pieces[:last])
        answers: list[tuple[bytes, int]] = []
        senders = [
            partial(api_put, (first, second)[i % 2], recording_id, last, versions[i % 2], answers)
            for i in range(DUPLICATE_SENDERS)
        ]
        run_together(*senders)

        accepted = {data for data, status in answers if status == 200}
        assert len(accepted) == 1, answers
        winner = accepted.pop()
        assert sorted(status for data, status in answers if data != winner) == [409] * (DUPLICATE_SENDERS // 2)
        assert_only_the_accepted_object(bucket, uuid.UUID(recording_id), last, winner)
        ready = second.finalize(recording_id).json()
        expected = expected_audio([*pieces[:last], winner], tmp_path)
        assert_same_audio(download(ready, tmp_path), ready['duration_ms'], expected)
    bucket.close()
