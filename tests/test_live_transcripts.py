"""Live transcripts end to end below the page: a recording's stored chunks are heard by the live worker while it is
being made, its words reach its owner (and nobody else) through the database, a dead worker's recording is taken up
by another, and the words go when the full transcript replaces them or the recording is deleted. On SQLite and
PostgreSQL, with a real ffmpeg and Whisper tiny.en (the mechanics do not depend on the model)."""

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select, update

from services.container import Services
from services.core.errors import NotFound
from services.core.models import LiveState, LiveTranscript, LiveTranscriptPiece, Recording, RecordingStatus, utc_now
from services.transcripts.engine import Word
from services.transcripts.live import LivePiece
from services.transcripts.live_store import START_GRACE_S, LiveTranscripts
from services.transcripts.live_worker import LiveWorker, after
from services.transcripts.models import load_model, model_folder, model_spec
from tests.conftest import UserFactory
from tests.support.audio_samples import split, spoken_webm

LOCAL_ONLY = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
SAID = (
    'Seven pelicans flew across the harbour at noon, looking for sardines. '
    'Please remember to buy apples, bread and cheese tomorrow morning.'
)
KEY_WORDS = {'flew', 'across', 'noon', 'looking', 'remember', 'apples', 'cheese', 'tomorrow', 'morning'}
ONE_SECOND = 4_000  # bytes of the test's Opus: about what MediaRecorder's 1-second timeslice hands over


@pytest.fixture(scope='module')
def spoken(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return spoken_webm(SAID, tmp_path_factory.mktemp('live'), 'live')


@pytest.fixture(scope='module')
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_model(model_folder(model_spec('tiny.en'), tmp_path_factory.mktemp('models')), workers=2)


def new_recording(services: Services, user_id: uuid.UUID) -> uuid.UUID:
    return services.recordings.create(user_id=user_id, mime_type='audio/webm;codecs=opus').id


def words_of(text: str) -> set[str]:
    return set(re.findall(r'\w+', text.lower()))


class RunningWorker:
    """A live worker's loop on a thread of this process, as its own process runs it."""

    def __init__(self, services: Services, model: Any, *, lease: timedelta | None = None) -> None:
        store = LiveTranscripts(database=services.database, **({'lease': lease} if lease else {}))
        self.worker = LiveWorker(
            store=store, storage=services.storage, model=lambda: model, threads=2, max_streams=4, poll_s=0.1
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def running(services: Services, tiny_en: Any) -> Iterator[RunningWorker]:
    worker = RunningWorker(services, tiny_en)
    yield worker
    worker.end()


def wait_for_words(services: Services, user_id: uuid.UUID, recording_id: uuid.UUID, timeout_s: float = 60) -> str:
    """Every piece the owner can read so far, once it holds at least five of the key words."""
    deadline = time.monotonic() + timeout_s
    text = ''
    while time.monotonic() < deadline:
        live = services.live.words(user_id=user_id, recording_id=recording_id)
        text = ' '.join(piece for _seq, piece in live.pieces)
        if len(words_of(text) & KEY_WORDS) >= 5:
            return text
        time.sleep(0.2)
    raise AssertionError(f'live words never came; heard so far: {text!r}')


@LOCAL_ONLY
def test_the_words_of_a_recording_being_made_reach_its_owner_and_nobody_else(
    services: Services, make_user: UserFactory, running: RunningWorker, spoken: bytes
) -> None:
    owner, stranger = make_user('Live Lena').id, make_user('Nosy Nils').id
    recording_id = new_recording(services, owner)
    assert not services.live.start(user_id=stranger, recording_id=recording_id), 'a stranger asked for live words'
    assert services.live.start(user_id=owner, recording_id=recording_id)
    for seq, piece in enumerate(split(spoken, ONE_SECOND)):  # the chunks arrive as the user speaks
        services.chunks.add_chunk(user_id=owner, recording_id=recording_id, seq=seq, data=piece)
        time.sleep(0.1)
    heard = wait_for_words(services, owner, recording_id)
    assert services.recordings.get(user_id=owner, recording_id=recording_id).status == RecordingStatus.RECORDING
    with pytest.raises(NotFound):
        services.live.words(user_id=stranger, recording_id=recording_id)
    pieces = services.live.words(user_id=owner, recording_id=recording_id).pieces
    assert [seq for seq, _text in pieces] == list(range(len(pieces))), 'pieces come in order, none twice'
    assert len(words_of(heard) & KEY_WORDS) >= 5, heard

    services.finalizer.finalize(user_id=owner, recording_id=recording_id)  # Stop: the worker lets it go
    deadline = time.monotonic() + 10
    while recording_id in running.worker._heard and time.monotonic() < deadline:
        time.sleep(0.1)
    assert recording_id not in running.worker._heard, 'the worker still hears a stopped recording'

    services.recordings.delete(user_id=owner, recording_id=recording_id)
    with services.database.session() as session:
        left = session.exec(select(LiveTranscriptPiece).where(col(LiveTranscriptPiece.recording_id) == recording_id))
        assert left.all() == [], 'the live words of a deleted recording are kept'
        assert session.get(LiveTranscript, recording_id) is None


@LOCAL_ONLY
def test_a_dead_workers_recording_is_taken_up_by_another_without_doubling_words(
    services: Services, make_user: UserFactory, tiny_en: Any, spoken: bytes
) -> None:
    owner = make_user('Resilient Rosa').id
    recording_id = new_recording(services, owner)
    assert services.live.start(user_id=owner, recording_id=recording_id)
    pieces = split(spoken, ONE_SECOND)
    first = RunningWorker(services, tiny_en, lease=timedelta(seconds=1))
    half = len(pieces) // 2
    for seq, piece in enumerate(pieces[:half]):
        services.chunks.add_chunk(user_id=owner, recording_id=recording_id, seq=seq, data=piece)
    deadline = time.monotonic() + 60
    while not services.live.words(user_id=owner, recording_id=recording_id).pieces and time.monotonic() < deadline:
        time.sleep(0.2)
    first.stop.set()  # dies without a word: its lease runs out (its own release is undone below)
    first.thread.join(30)
    with services.database.session() as session:  # as if it had been killed: still named, lease run out
        session.exec(
            update(LiveTranscript)
            .where(col(LiveTranscript.recording_id) == recording_id)
            .values(state=LiveState.LIVE, worker=first.worker.name, lease_until=utc_now() - timedelta(seconds=1))
        )
        session.commit()
    assert not first.worker.store.add_pieces('someone-else', recording_id, [(0, 1, 'late')]), 'not its lease'
    second = RunningWorker(services, tiny_en)
    try:
        for seq, piece in enumerate(pieces[half:], start=half):
            services.chunks.add_chunk(user_id=owner, recording_id=recording_id, seq=seq, data=piece)
        heard = wait_for_words(services, owner, recording_id)
    finally:
        second.end()
    words = re.findall(r'\w+', heard.lower())
    assert max(words.count(word) for word in KEY_WORDS & set(words)) == 1, f'words written twice: {heard!r}'


@LOCAL_ONLY
def test_a_request_no_worker_takes_up_says_the_server_is_busy_and_a_stop_ends_it(
    services: Services, make_user: UserFactory
) -> None:
    owner = make_user('Waiting Wim').id
    recording_id = new_recording(services, owner)
    assert services.live.start(user_id=owner, recording_id=recording_id)
    assert services.live.words(user_id=owner, recording_id=recording_id).busy is False  # just asked
    with services.database.session() as session:
        aged = utc_now() - timedelta(seconds=START_GRACE_S + 1)
        session.exec(update(LiveTranscript).values(created_at=aged))
        session.commit()
    assert services.live.words(user_id=owner, recording_id=recording_id).busy is True
    claims = services.live.claim('a-worker', 1)
    assert [claim.recording_id for claim in claims] == [recording_id]
    assert services.live.claim('another-worker', 1) == [], 'two workers hear one recording'
    services.live.release('a-worker', recording_id, LiveState.BUSY)  # more than it keeps up with
    assert services.live.words(user_id=owner, recording_id=recording_id).busy is True
    services.live.stop(user_id=owner, recording_id=recording_id)
    assert services.live.words(user_id=owner, recording_id=recording_id).state == LiveState.ENDED


@LOCAL_ONLY
def test_live_words_are_asked_only_for_ones_own_recording_being_made_and_only_when_wanted(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    owner = make_user('Private Pia').id
    recording_id = new_recording(services, owner)
    services.users.change_profile(owner, {'live_transcript': False})
    assert not services.live.start(user_id=owner, recording_id=recording_id), 'asked although turned off'
    services.users.change_profile(owner, {'live_transcript': True})
    services.chunks.add_chunk(user_id=owner, recording_id=recording_id, seq=0, data=webm_5s)
    services.finalizer.finalize(user_id=owner, recording_id=recording_id)
    assert not services.live.start(user_id=owner, recording_id=recording_id), 'asked for a stopped recording'
    with pytest.raises(NotFound):
        services.live.words(user_id=owner, recording_id=uuid.uuid4())
    with services.database.session() as session:
        assert session.get(Recording, recording_id) is not None


@LOCAL_ONLY
def test_the_full_transcript_replaces_the_live_words(services: Services, make_user: UserFactory) -> None:
    from services.transcripts.queue import TranscriptQueue

    owner = make_user('Final Fay').id
    recording_id = new_recording(services, owner)
    assert services.live.start(user_id=owner, recording_id=recording_id)
    (claim,) = services.live.claim('w', 1)
    assert services.live.add_pieces('w', claim.recording_id, [(0, 900, 'live words')])
    queue = TranscriptQueue(database=services.database, lease=timedelta(seconds=30))
    queue.enqueue(recording_id)
    job = queue.claim()
    assert job is not None and job.recording_id == recording_id
    assert queue.complete(job, text='final words', segments='[]')
    with services.database.session() as session:
        assert session.exec(select(LiveTranscriptPiece)).all() == []
        assert session.get(LiveTranscript, recording_id) is None


@LOCAL_ONLY
def test_the_api_gives_the_live_words_to_their_owner_only(
    services: Services, api: httpx.Client, make_user: UserFactory
) -> None:
    owner, auth = make_user.with_auth('Api Anna')
    _stranger, stranger_auth = make_user.with_auth('Api Stranger')
    recording_id = new_recording(services, owner.id)
    assert api.get(f'/api/recordings/{recording_id}/live', headers=auth).json() == {
        'state': None,
        'busy': False,
        'pieces': [],
    }
    assert services.live.start(user_id=owner.id, recording_id=recording_id)
    (claim,) = services.live.claim('w', 1)
    assert services.live.add_pieces('w', claim.recording_id, [(0, 900, 'first words'), (900, 1800, 'and more')])
    answer = api.get(f'/api/recordings/{recording_id}/live', params={'after': 0}, headers=auth)
    assert answer.json() == {'state': 'live', 'busy': False, 'pieces': [{'seq': 1, 'text': 'and more'}]}
    assert api.get(f'/api/recordings/{recording_id}/live', headers=stranger_auth).status_code == 404
    assert api.get(f'/api/recordings/{recording_id}/live', params={'after': -2}, headers=auth).status_code == 422


def test_words_already_written_are_never_written_again() -> None:
    """A stream may hear a stretch again (a new worker starts from the first chunk; the engine re-hears context):
    only the words after what was written go on."""
    words = (Word(0, 400, 'seven'), Word(450, 900, 'pelicans'), Word(950, 1400, 'flew'))
    piece = LivePiece(0, 1400, 'seven pelicans flew', words)
    assert after(piece, 0) == (0, 1400, 'seven pelicans flew')
    assert after(piece, 600) == (450, 1400, 'pelicans flew')  # the middle of "pelicans" (675 ms) is after 600
    assert after(piece, 1400) is None


@LOCAL_ONLY
def test_a_user_turns_live_words_off_and_on_through_the_api(
    services: Services, api: httpx.Client, make_user: UserFactory
) -> None:
    user, auth = make_user.with_auth('Switching Sam')
    assert api.get(f'/api/profile/{user.id}', headers=auth).json()['live_transcript'] is True  # on by default
    answer = api.patch(f'/api/profile/{user.id}', json={'live_transcript': False}, headers=auth)
    assert (answer.status_code, answer.json()['live_transcript']) == (200, False)
    assert not services.live.start(user_id=user.id, recording_id=new_recording(services, user.id))
    refused = api.patch(f'/api/profile/{user.id}', json={'live_transcript': 'yes please'}, headers=auth)
    assert refused.status_code == 422
    assert api.get(f'/api/profile/{user.id}', headers=auth).json()['live_transcript'] is False


@LOCAL_ONLY
def test_an_api_client_asks_for_live_words_like_the_page(
    services: Services, api: httpx.Client, make_user: UserFactory
) -> None:
    owner, auth = make_user.with_auth('Scripted Sol')
    _stranger, stranger_auth = make_user.with_auth('Scripted Stranger')
    recording_id = new_recording(services, owner.id)
    assert api.post(f'/api/recordings/{recording_id}/live', headers=stranger_auth).status_code == 404
    answer = api.post(f'/api/recordings/{recording_id}/live', headers=auth)
    assert (answer.status_code, answer.json()['state']) == (202, 'waiting')
