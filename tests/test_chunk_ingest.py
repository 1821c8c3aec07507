"""Chunk ingest from many callers at once: each learns its own outcome only after its own row is written."""

import hashlib
import io
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from services.container import Services
from services.core.errors import Conflict, NotFound
from services.core.models import Chunk, Recording, RecordingStatus
from services.storage.keys import chunk_key, chunks_prefix
from tests.conftest import UserFactory, stored_keys
from tests.support.audio_samples import WEBM_MAGIC


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
