"""The audio channel's batches on the event loop: chunks arriving together are stored together, each learns its
own outcome, and no chunk is ever left without an answer, whatever fails."""

import asyncio
import hashlib
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import socketio

from api.audio_channel import AudioChannel
from api.audio_payloads import ChunkPayload
from api.throttled_log import ThrottledLog
from services.container import Services
from services.core.errors import Conflict, NotFound, ServiceUnavailable
from services.recordings.chunk_batches import ChunkBatches
from services.recordings.chunks import ChunkReceipt, ChunkUpload
from services.storage.keys import chunk_key
from tests.conftest import UserFactory
from tests.support.audio_samples import WEBM_MAGIC


class CountedStore:
    """The real `add_chunks`, counting its batches; `fail` makes the next call raise, as a bug would."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.batch_sizes: list[int] = []
        self.fail = False

    def __call__(self, uploads: list[ChunkUpload]) -> list[ChunkReceipt | BaseException]:
        self.batch_sizes.append(len(uploads))
        if self.fail:
            raise RuntimeError('injected bug')
        return self.services.chunks.add_chunks(uploads)


def new_recording(services: Services, user_id: uuid.UUID) -> uuid.UUID:
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=WEBM_MAGIC + b'head')
    return recording.id


async def test_chunks_arriving_together_share_batches_and_each_gets_its_own_outcome(
    services: Services, make_user: UserFactory
) -> None:
    owner, stranger = make_user().id, make_user().id
    recordings = [new_recording(services, owner) for _ in range(20)]
    store = CountedStore(services)
    batches = ChunkBatches(store)
    good = [ChunkUpload(owner, rid, seq, os.urandom(2000)) for rid in recordings for seq in (1, 2, 3)]
    theirs = ChunkUpload(stranger, recordings[0], 4, b'not yours')
    clash = ChunkUpload(owner, recordings[1], 1, b'other bytes for a stored seq')
    try:
        first = await asyncio.gather(*(batches.store(upload) for upload in good))
        later = await asyncio.gather(batches.store(theirs), batches.store(clash), return_exceptions=True)
    finally:
        batches.close()
    assert [(r.seq, r.size) for r in first] == [(u.seq, len(u.data)) for u in good]
    assert len(store.batch_sizes) < len(good) / 5, f'60 chunks in {len(store.batch_sizes)} batches'
    assert isinstance(later[0], NotFound) and isinstance(later[1], Conflict)
    for upload in good:
        key = chunk_key(upload.recording_id, upload.seq, hashlib.sha256(upload.data).hexdigest())
        assert services.storage.exists(key)


async def test_a_failing_batch_answers_every_chunk_in_it_and_the_next_batch_works(
    services: Services, make_user: UserFactory
) -> None:
    user_id = make_user().id
    recording_id = new_recording(services, user_id)
    store = CountedStore(services)
    batches = ChunkBatches(store)
    try:
        store.fail = True
        failed = await asyncio.wait_for(
            asyncio.gather(*(batches.store(ChunkUpload(user_id, recording_id, seq, b'x' * seq)) for seq in (1, 2, 3)),
                           return_exceptions=True),
            timeout=10,
        )  # fmt: skip
        store.fail = False
        retried = await asyncio.wait_for(batches.store(ChunkUpload(user_id, recording_id, 1, b'x')), timeout=10)
    finally:
        batches.close()
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in failed), failed
    assert retried.seq == 1


async def test_a_closed_channel_refuses_new_chunks_as_retryable(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    batches = ChunkBatches(CountedStore(services))
    batches.close()
    with pytest.raises(ServiceUnavailable, match='shutting down'):
        await batches.store(ChunkUpload(user_id, new_recording(services, user_id), 1, b'late'))


async def test_a_sender_that_goes_away_does_not_stop_the_others(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    recording_id = new_recording(services, user_id)
    batches = ChunkBatches(CountedStore(services))
    try:
        gone = asyncio.create_task(batches.store(ChunkUpload(user_id, recording_id, 1, b'one')))
        stays = asyncio.create_task(batches.store(ChunkUpload(user_id, recording_id, 2, b'two')))
        await asyncio.sleep(0)
        gone.cancel()
        receipt = await asyncio.wait_for(stays, timeout=10)
    finally:
        batches.close()
    assert receipt.seq == 2


async def test_a_chunk_whose_connection_closed_while_it_waited_gets_a_plain_retry_answer(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """An overloaded server drops connections whose pings came late; their queued chunks must not become errors
    with tracebacks in the log (the browser reconnects and sends them again)."""
    channel = AudioChannel(services, socketio.AsyncServer(async_mode='asgi'))
    payload = {'recording_id': str(uuid.uuid4()), 'seq': 1, 'data': b'audio'}
    try:
        answer = await channel.answer('chunk', 'a-closed-connection', payload, ChunkPayload, channel.chunk)
    finally:
        channel.close()
    closed = 'the connection closed; this will be sent again'
    assert answer == {'ok': False, 'status': 503, 'error': closed, 'retry': True}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_flood_of_busy_answers_is_logged_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    busy = ThrottledLog(every_s=60)
    message = 'chunk failed, the browser will retry: the server is busy'
    for _ in range(500):
        busy.note(message)
    assert [record.getMessage() for record in caplog.records] == [message]


def rest_upload(api: httpx.Client, auth: dict[str, str], recording_id: uuid.UUID, seq: int) -> httpx.Response:
    return api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=os.urandom(3000), headers=auth)


def test_rest_chunks_sent_together_share_batches_with_each_other(
    api: httpx.Client, services: Services, make_user: UserFactory
) -> None:
    """The REST API's chunks take the same batches as the audio channel's: no request holds a thread while its
    chunk waits for the batch before it."""
    user, auth = make_user.with_auth()
    recordings = [new_recording(services, user.id) for _ in range(4)]
    store = CountedStore(services)
    services.chunk_batches = ChunkBatches(store)
    jobs = [(rid, seq) for rid in recordings for seq in range(1, 11)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda job: rest_upload(api, auth, *job), jobs))
    services.chunk_batches.close()
    assert [answer.status_code for answer in answers] == [200] * len(jobs)
    assert sum(store.batch_sizes) == len(jobs) and len(store.batch_sizes) < len(jobs)


async def test_chunks_past_the_in_flight_cap_are_refused_as_busy_and_kept_by_their_sender(
    services: Services, make_user: UserFactory
) -> None:
    user_id = make_user().id
    recording_id = new_recording(services, user_id)
    release = threading.Event()

    def slow_store(uploads: list[ChunkUpload]) -> list[ChunkReceipt | BaseException]:
        release.wait(10)
        return services.chunks.add_chunks(uploads)

    batches = ChunkBatches(slow_store, max_in_flight=2)
    try:
        waiting = [asyncio.create_task(batches.store(ChunkUpload(user_id, recording_id, seq, b'x'))) for seq in (1, 2)]
        await asyncio.sleep(0)
        with pytest.raises(ServiceUnavailable, match='the server is busy'):
            await batches.store(ChunkUpload(user_id, recording_id, 3, b'x'))
        release.set()
        assert [receipt.seq for receipt in await asyncio.gather(*waiting)] == [1, 2]
        assert (await batches.store(ChunkUpload(user_id, recording_id, 3, b'x'))).seq == 3  # room again
    finally:
        release.set()
        batches.close()
