"""The service layer: chunk ingest, finalize, ownership and deletion, on every database and storage backend."""

import hashlib
import uuid

import pytest
from sqlmodel import select

from services.audio.ffmpeg import probe_duration_ms
from services.container import Services
from services.core.errors import (
    AudioProcessingFailed,
    ChunkTooLarge,
    Conflict,
    InvalidInput,
    LimitReached,
    MissingChunks,
    NotFound,
)
from services.core.models import Chunk, Recording, RecordingStatus
from services.recordings.service import recording_audio_key
from services.storage.keys import chunk_key, recording_prefix
from tests.conftest import UserFactory, record, stored_keys
from tests.support.audio_samples import WEBM_MAGIC, split

MATROSKA_CUES_ID = bytes.fromhex('1C53BB6B')


def chunk_rows(services: Services, recording_id: uuid.UUID) -> list[Chunk]:
    with services.database.session() as session:
        return list(session.exec(select(Chunk).where(Chunk.recording_id == recording_id)).all())


def test_same_chunk_twice_is_stored_once(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    first = services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=WEBM_MAGIC + b'abc')
    again = services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=WEBM_MAGIC + b'abc')
    assert (first.duplicate, again.duplicate) == (False, True)
    assert len(chunk_rows(services, recording.id)) == 1


def test_same_seq_with_other_bytes_is_refused_and_keeps_the_original(
    services: Services, make_user: UserFactory
) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=WEBM_MAGIC + b'original')
    with pytest.raises(Conflict, match='different bytes'):
        tampered = WEBM_MAGIC + b'tampered'
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=tampered)
    stored = bytearray()
    services.storage.copy_to(
        chunk_key(recording.id, 0, hashlib.sha256(WEBM_MAGIC + b'original').hexdigest()), _Sink(stored)
    )
    assert bytes(stored) == WEBM_MAGIC + b'original'


class _Sink:
    def __init__(self, target: bytearray) -> None:
        self.target = target

    def write(self, data: bytes) -> int:
        self.target += data
        return len(data)


@pytest.mark.parametrize(('data', 'error'), [(b'', InvalidInput), (b'x' * (64 * 1024 + 1), ChunkTooLarge)])
def test_empty_and_oversize_chunks_are_refused(
    services: Services, make_user: UserFactory, data: bytes, error: type[Exception]
) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    with pytest.raises(error):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=data)
    assert chunk_rows(services, recording.id) == []


@pytest.mark.parametrize(('seq', 'error'), [(-1, InvalidInput), (True, InvalidInput), (10**9, LimitReached)])
def test_seq_out_of_range_is_refused(
    services: Services, make_user: UserFactory, seq: int, error: type[Exception]
) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    with pytest.raises(error):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=b'a')


def test_finalize_reports_every_gap_and_succeeds_once_filled(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    pieces = split(webm_5s, len(webm_5s) // 8 + 1)
    assert len(pieces) == 8
    for seq in (0, 1, 3):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=pieces[seq])
    with pytest.raises(MissingChunks) as gap:
        services.finalizer.finalize(user_id=user_id, recording_id=recording.id, chunk_count=len(pieces))
    assert gap.value.missing == [2, *range(4, len(pieces))]
    assert services.recordings.get(user_id=user_id, recording_id=recording.id).status == RecordingStatus.RECORDING
    for seq, piece in enumerate(pieces):
        services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    ready = services.finalizer.finalize(user_id=user_id, recording_id=recording.id, chunk_count=len(pieces))
    assert ready.status == RecordingStatus.READY


def test_finalize_makes_one_seekable_file_of_the_right_length(
    services: Services, make_user: UserFactory, webm_5s: bytes, tmp_path
) -> None:
    user_id = make_user().id
    ready = record(services, user_id, webm_5s)
    assert ready.duration_ms == pytest.approx(5000, abs=200)
    final = tmp_path / 'final.webm'
    with final.open('wb') as handle:
        services.storage.copy_to(recording_audio_key(ready), handle)
    assert ready.size_bytes == final.stat().st_size
    assert probe_duration_ms(final) == pytest.approx(5000, abs=200)
    assert MATROSKA_CUES_ID in final.read_bytes(), 'no cues: browsers could not seek'
    assert chunk_rows(services, ready.id) == []
    assert stored_keys(services.storage, recording_prefix(ready.id)) == [recording_audio_key(ready)]


def test_finalize_twice_returns_the_same_recording(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user().id
    ready = record(services, user_id, webm_5s)
    again = services.finalizer.finalize(user_id=user_id, recording_id=ready.id)
    assert (again.status, again.duration_ms, again.size_bytes) == (ready.status, ready.duration_ms, ready.size_bytes)


def test_no_chunk_is_taken_after_finalize(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user().id
    ready = record(services, user_id, webm_5s)
    with pytest.raises(Conflict, match='already finished'):
        services.chunks.add_chunk(user_id=user_id, recording_id=ready.id, seq=999, data=b'late')


def test_finalize_without_audio_is_a_clear_conflict(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    with pytest.raises(Conflict, match='no audio'):
        services.finalizer.finalize(user_id=user_id, recording_id=recording.id)


GARBAGE = WEBM_MAGIC + b'not audio at all' * 100


def test_garbage_audio_fails_cleanly_and_keeps_the_chunks(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=0, data=GARBAGE)
    with pytest.raises(AudioProcessingFailed):
        services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
    failed = services.recordings.get(user_id=user_id, recording_id=recording.id)
    assert failed.status == RecordingStatus.FAILED
    assert failed.error
    assert services.storage.exists(chunk_key(recording.id, 0, hashlib.sha256(GARBAGE).hexdigest()))


def test_delete_leaves_nothing_behind(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user().id
    ready = record(services, user_id, webm_5s)
    unfinished = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    services.chunks.add_chunk(user_id=user_id, recording_id=unfinished.id, seq=0, data=WEBM_MAGIC + b'abc')
    for recording_id in (ready.id, unfinished.id):
        assert stored_keys(services.storage, recording_prefix(recording_id))
        services.recordings.delete(user_id=user_id, recording_id=recording_id)
        with services.database.session() as session:
            assert session.get(Recording, recording_id) is None
        assert chunk_rows(services, recording_id) == []
        assert stored_keys(services.storage, recording_prefix(recording_id)) == []


def test_another_users_recording_looks_missing(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    owner, intruder = make_user('Owner').id, make_user('Intruder').id
    ready = record(services, owner, webm_5s)
    calls = [
        lambda: services.recordings.get(user_id=intruder, recording_id=ready.id),
        lambda: services.recordings.rename(user_id=intruder, recording_id=ready.id, title='mine now'),
        lambda: services.recordings.delete(user_id=intruder, recording_id=ready.id),
        lambda: services.chunks.add_chunk(user_id=intruder, recording_id=ready.id, seq=0, data=WEBM_MAGIC),
        lambda: services.finalizer.finalize(user_id=intruder, recording_id=ready.id),
    ]
    for call in calls:
        with pytest.raises(NotFound, match='recording not found'):
            call()
    assert services.recordings.get(user_id=owner, recording_id=ready.id).title == ready.title
    assert services.recordings.list(user_id=intruder) == []


def test_list_is_newest_first_and_pages(services: Services, make_user: UserFactory) -> None:
    user_id = make_user().id
    made = [services.recordings.create(user_id=user_id, mime_type='audio/webm', title=f'take {i}') for i in range(5)]
    listed = services.recordings.list(user_id=user_id, limit=3)
    assert [r.title for r in listed] == ['take 4', 'take 3', 'take 2']
    assert [r.id for r in services.recordings.list(user_id=user_id, limit=3, offset=3)] == [made[1].id, made[0].id]
    assert all(r.created_at.tzinfo is not None for r in listed)


@pytest.mark.parametrize(
    ('title', 'stored'),
    [('  Walk   in the park ', 'Walk in the park'), ('<b>x</b>', '<b>x</b>'), ('Café 🎙️', 'Café 🎙️'), ('a\x00b', 'ab')],
)
def test_titles_are_tidied_not_mangled(services: Services, make_user: UserFactory, title: str, stored: str) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm', title=title)
    assert recording.title == stored


@pytest.mark.parametrize('title', ['', '   ', 'x' * 201])
def test_bad_titles_are_refused(services: Services, make_user: UserFactory, title: str) -> None:
    user_id = make_user().id
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    with pytest.raises(InvalidInput):
        services.recordings.rename(user_id=user_id, recording_id=recording.id, title=title)


def test_unsupported_audio_type_is_refused(services: Services, make_user: UserFactory) -> None:
    with pytest.raises(InvalidInput, match='unsupported audio type'):
        services.recordings.create(user_id=make_user().id, mime_type='video/x-msvideo')


def test_nul_is_dropped_from_names_on_every_database(services: Services) -> None:
    user, _token = services.users.onboard(name='Ada\x00 Lovelace')
    assert services.users.get(user.id).name == 'Ada Lovelace'


@pytest.mark.parametrize('name', ['', '   ', 'x' * 51])
def test_bad_names_are_refused(services: Services, name: str) -> None:
    with pytest.raises(InvalidInput):
        services.users.onboard(name=name)


@pytest.mark.parametrize(
    ('environment', 'secret', 'refused'),
    [
        ('production', None, True),
        ('production', 'short', True),
        ('production', 'x' * 32, False),
        ('development', None, False),
    ],
)
def test_production_needs_a_chosen_secret(tmp_path, environment: str, secret: str | None, refused: bool) -> None:
    from services.core.config import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path, environment=environment, secret=secret)
    if refused:
        with pytest.raises(ValueError, match='VR_SECRET'):
            settings.check_production_ready()
    else:
        settings.check_production_ready()


def test_the_orphan_sweep_removes_only_what_no_recording_owns(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    user_id = make_user().id
    kept = record(services, user_id, webm_5s)
    orphan = uuid.uuid4()  # a delete whose storage step failed, or a writer that raced it
    services.storage.put_bytes(f'recordings/{orphan}/audio.mp3', b'left behind')
    services.storage.put_bytes(f'recordings/{orphan}/chunks/3.abcd', b'left behind')
    assert services.sweeper.orphans is not None
    assert services.sweeper.orphans.sweep() == 1
    assert stored_keys(services.storage, f'recordings/{orphan}/') == []
    assert stored_keys(services.storage, recording_prefix(kept.id)) == [recording_audio_key(kept)]


def test_audio_longer_than_the_recording_limit_is_refused_at_finalize(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    """A crafted upload can pack hours of silence into a few chunks; the file's own duration is what counts."""
    services.finalizer.max_duration_ms, services.finalizer.duration_slack_ms = 2000, 0
    user_id = make_user().id
    with pytest.raises(AudioProcessingFailed, match='longer than the'):
        record(services, user_id, webm_5s)
    [refused] = services.recordings.list(user_id=user_id)
    assert refused.status == RecordingStatus.FAILED and 'limit of one recording' in (refused.error or '')
    assert stored_keys(services.storage, f'recordings/{refused.id}/chunks/')  # kept, as with any refused audio
    assert not services.storage.exists(recording_audio_key(refused))
