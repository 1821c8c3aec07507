"""Recordings nobody finished are finalized from their chunks, gaps bridged, and never left half-done."""

import uuid
from datetime import timedelta

import pytest
from sqlmodel import update

from services.access.upload_tokens import UploadGrant, UploadTokens
from services.container import Services
from services.core.errors import Busy
from services.core.models import Recording, RecordingStatus, utc_now
from tests.conftest import UserFactory
from tests.support.audio_samples import split


def age(services: Services, recording_id: uuid.UUID, seconds: float, status: RecordingStatus | None = None) -> None:
    values: dict[str, object] = {'updated_at': utc_now() - timedelta(seconds=seconds)}
    if status:
        values['status'] = status
    with services.database.session() as session:
        session.exec(update(Recording).where(Recording.id == recording_id).values(**values))  # type: ignore[call-overload, arg-type]
        session.commit()


def upload(services: Services, user_id: uuid.UUID, pieces: list[bytes], skip: set[int] = frozenset()) -> Recording:
    recording = services.recordings.create(user_id=user_id, mime_type='audio/webm')
    for seq, piece in enumerate(pieces):
        if seq not in skip:
            services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
    return recording


def test_an_idle_recording_is_finalized_across_a_gap(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    user_id = make_user('Idle').id
    pieces = split(webm_5s, len(webm_5s) // 10 + 1)
    gapped = upload(services, user_id, pieces, skip={4})
    fresh = upload(services, user_id, pieces)
    age(services, gapped.id, services.settings.stale_recording_s + 1)

    assert services.sweeper.sweep() == [gapped.id]
    ready = services.recordings.get(user_id=user_id, recording_id=gapped.id)
    assert ready.status == RecordingStatus.READY_OPEN  # playable, and open to the audio of the gap if it comes
    assert ready.duration_ms == pytest.approx(5000, abs=200)  # the audio after the gap is kept
    assert services.recordings.get(user_id=user_id, recording_id=fresh.id).status == RecordingStatus.RECORDING


def test_an_idle_recording_without_its_header_or_audio_is_marked_failed(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    user_id = make_user('Broken').id
    headless = upload(services, user_id, split(webm_5s, 4000), skip={0})
    empty = upload(services, user_id, [])
    for recording in (headless, empty):
        age(services, recording.id, services.settings.stale_recording_s + 1)
    assert services.sweeper.sweep() == []
    failed = {r.id: r for r in services.recordings.list(user_id=user_id)}
    assert failed[headless.id].status == RecordingStatus.FAILED
    assert 'beginning' in (failed[headless.id].error or '')
    assert failed[empty.id].status == RecordingStatus.FAILED
    assert services.sweeper.sweep() == []  # failed ones are not retried forever


def test_a_finalize_in_progress_elsewhere_is_not_done_twice(
    services: Services, make_user: UserFactory, webm_5s: bytes
) -> None:
    user_id = make_user('Twice').id
    recording = upload(services, user_id, split(webm_5s, 4000))
    age(services, recording.id, 10, status=RecordingStatus.FINALIZING)
    with pytest.raises(Busy):
        services.finalizer.finalize(user_id=user_id, recording_id=recording.id)
    age(services, recording.id, 3600, status=RecordingStatus.FINALIZING)  # its finalizer died long ago
    assert services.finalizer.finalize(user_id=user_id, recording_id=recording.id).status == RecordingStatus.READY


def test_upload_tokens_name_their_user_until_they_expire() -> None:
    tokens = UploadTokens('secret', lifetime_s=60)
    user_id = uuid.uuid4()
    token = tokens.issue(user_id, now=1000)
    assert tokens.verify(token, now=1059) == UploadGrant(user_id, 1)
    assert tokens.verify(token, now=1061) is None
    forged = token.replace(str(user_id), str(uuid.uuid4()))
    assert tokens.verify(forged, now=1000) is None
    assert UploadTokens('other secret').verify(token, now=1000) is None
    garbage_tokens = (None, 42, '', 'a.b', 'a.b.c', 'a.b.c.d', f'{user_id}.1.notanumber.sig', f'{user_id}.1.1030.é')
    for garbage in garbage_tokens:
        assert tokens.verify(garbage, now=1000) is None
