"""Chunk ingest shares commits between callers: each learns its own outcome only after its own row is written."""

import hashlib
import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from services.container import Services
from services.errors import Conflict, NotFound
from services.group_commit import GroupCommit
from services.models import Chunk, Recording, RecordingStatus
from services.storage.keys import chunk_key, chunks_prefix

from .conftest import UserFactory, stored_keys
from .support.audio_samples import WEBM_MAGIC


class Ledger:
    """A stand-in for the database: remembers what was committed, in which batch, slowly like an fsync."""

    def __init__(self, fail_items: set[int] | None = None, fail_batch: bool = False) -> None:
        self.committed: set[int] = set()
        self.batches: list[list[int]] = []
        self.fail_items = fail_items or set()
        self.fail_batch = fail_batch
        self.lock = threading.Lock()

    def write(self, items: list[int]) -> list[str | BaseException]:
        time.sleep(0.005)
        if self.fail_batch:
            raise OSError('disk gone')
        with self.lock:
            self.batches.append(items)
            self.committed.update(i for i in items if i not in self.fail_items)
        return [ValueError(f'bad {i}') if i in self.fail_items else f'ok {i}' for i in items]


def submit_all(group: GroupCommit[int, str], ledger: Ledger, count: int) -> list[str | BaseException]:
    def one(item: int) -> str | BaseException:
        try:
            result = group.submit(item)
        except (ValueError, OSError) as error:
            return error
        assert item in ledger.committed, 'returned before its row was committed'
        return result

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    ledger = Ledger()
    results = submit_all(GroupCommit(ledger.write), ledger, 200)
    assert results == [f'ok {i}' for i in range(200)]
    assert sorted(i for batch in ledger.batches for i in batch) == list(range(200))
    assert max(len(batch) for batch in ledger.batches) > 1
    assert len(ledger.batches) < 200


def test_a_failed_item_fails_only_its_caller() -> None:
    ledger = Ledger(fail_items={3, 7})
    results = submit_all(GroupCommit(ledger.write), ledger, 20)
    assert [i for i, r in enumerate(results) if isinstance(r, ValueError)] == [3, 7]
    assert all(r == f'ok {i}' for i, r in enumerate(results) if i not in {3, 7})


def test_a_batch_whose_bookkeeping_fails_once_leaves_no_caller_waiting_forever() -> None:
    """A writer that breaks its contract once (here: too few outcomes) fails that batch, and every caller queued
    behind it still gets its own answer: the leader hands over whatever happened."""
    ledger = Ledger()
    broken = {'left': 1}

    def write_once_wrong(items: list[int]) -> list[str | BaseException]:
        outcomes = ledger.write(items)
        with ledger.lock:
            if broken['left'] and len(items) > 0:
                broken['left'] -= 1
                return outcomes[:-1]
        return outcomes

    group: GroupCommit[int, str] = GroupCommit(write_once_wrong)
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(group.submit, i) for i in range(100)]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=20))
            except RuntimeError as error:
                outcomes.append(error)
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert 1 <= len(failed) <= len(ledger.batches[0])  # only the first batch failed, loudly
    assert [o for o in outcomes if not isinstance(o, RuntimeError)] == [
        f'ok {i}' for i, o in enumerate(outcomes) if not isinstance(o, RuntimeError)
    ]


def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    ledger = Ledger(fail_batch=True)
    group: GroupCommit[int, str] = GroupCommit(ledger.write)
    with pytest.raises(OSError, match='disk gone'):
        group.submit(1)
    ledger.fail_batch = False
    assert group.submit(2) == 'ok 2'


def test_chunks_arriving_together_are_each_stored_and_readable(services: Services, make_user: UserFactory) -> None:
    """The chunk path shares commits between callers; every acknowledged chunk must still be there, byte for byte."""
    user_id = make_user('Ada').id
    recordings = [services.recordings.create(user_id=user_id, mime_type='audio/webm').id for _ in range(8)]
    jobs = [(rid, seq, WEBM_MAGIC + f'{rid}:{seq}'.encode() * 50) for rid in recordings for seq in range(10)]

    def send(job: tuple[uuid.UUID, int, bytes]) -> int:
        rid, seq, data = job
        return services.chunks.add_chunk(user_id=user_id, recording_id=rid, seq=seq, data=data).size

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(send, jobs)) == [len(data) for _, _, data in jobs]
    for rid, seq, data in jobs:
        stored = io.BytesIO()
        services.storage.copy_to(chunk_key(rid, seq, hashlib.sha256(data).hexdigest()), stored)
        assert stored.getvalue() == data
    with services.database.session() as session:
        assert len(session.exec(select(Chunk)).all()) == len(jobs)


def test_a_known_recording_still_meets_every_check(services: Services, make_user: UserFactory) -> None:
    """After a recording's first chunks the service skips its look-up; the database still decides: another user gets
    "not found", a finished recording refuses, and a refused chunk leaves no object behind."""
    owner, other = make_user('Ada').id, make_user('Mallory').id
    recording = services.recordings.create(user_id=owner, mime_type='audio/webm').id
    for seq in range(3):
        services.chunks.add_chunk(user_id=owner, recording_id=recording, seq=seq, data=WEBM_MAGIC + bytes([seq]) * 99)
    with pytest.raises(NotFound):
        services.chunks.add_chunk(user_id=other, recording_id=recording, seq=3, data=b'not yours' * 20)
    with services.database.session() as session:
        row = session.get(Recording, recording)
        assert row is not None
        row.status = RecordingStatus.READY
        session.add(row)
        session.commit()
    with pytest.raises(Conflict):
        services.chunks.add_chunk(user_id=owner, recording_id=recording, seq=3, data=b'too late' * 20)
    kept = [key.rsplit('/', 1)[-1].split('.')[0] for key in stored_keys(services.storage, chunks_prefix(recording))]
    assert sorted(kept) == ['0', '1', '2'], 'the refused chunks left objects behind'
