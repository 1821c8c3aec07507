"""Waveforms after finalize, MP3 copies made once with progress, and share links that expire or are revoked."""

import time
import uuid
from datetime import timedelta

import httpx
import pytest
from nicegui.testing.user import User
from sqlmodel import update

from services.audio.exports import recording_mp3_key
from services.audio.waveforms import peaks_of
from services.container import Services
from services.core.errors import InvalidInput, NotFound
from services.core.models import Recording, Share, utc_now
from tests.conftest import UserFactory, record
from tests.test_api import upload
from tests.test_pages import onboard as onboard_page
from tests.test_pages import user_id_named


def wait_for_peaks(services: Services, user_id: uuid.UUID, recording_id: uuid.UUID) -> list[float]:
    for _ in range(100):
        if peaks := peaks_of(services.recordings.get(user_id=user_id, recording_id=recording_id)):
            return peaks
        time.sleep(0.1)
    raise AssertionError('no waveform was computed')


def test_a_waveform_is_computed_after_finalize(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user('Wave').id
    ready = record(services, user_id, webm_5s)
    peaks = wait_for_peaks(services, user_id, ready.id)
    assert 100 <= len(peaks) <= 200
    assert max(peaks) == 1.0 and min(peaks) < 0.5


def test_missing_waveforms_are_filled_in(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user('Wave').id
    ready = record(services, user_id, webm_5s)
    wait_for_peaks(services, user_id, ready.id)
    with services.database.session() as session:
        session.exec(update(Recording).values(peaks=None))  # type: ignore[call-overload]
        session.commit()
    assert services.waveforms.fill_missing() == 1
    assert peaks_of(services.recordings.get(user_id=user_id, recording_id=ready.id))


def test_a_waveform_finished_after_its_recording_was_deleted_is_dropped_quietly(
    services: Services,
    make_user: UserFactory,
    webm_5s: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another instance's sweeper may be drawing a waveform while the owner deletes the recording: the late result
    has no row to land in, and that is no error (it once failed its commit with a traceback)."""
    user_id = make_user('Wave').id
    ready = record(services, user_id, webm_5s)
    wait_for_peaks(services, user_id, ready.id)
    copy_to = services.storage.copy_to

    def deleted_while_reading(key: str, target: object) -> int:  # the fault: a delete lands mid-computation
        size = copy_to(key, target)  # type: ignore[arg-type]
        services.recordings.delete(user_id=user_id, recording_id=ready.id)
        return size

    monkeypatch.setattr(services.storage, 'copy_to', deleted_while_reading)
    services.waveforms._compute_logged(ready.id)
    assert [record.getMessage() for record in caplog.records if record.levelname == 'ERROR'] == []
    with pytest.raises(NotFound):
        services.recordings.rename(user_id=user_id, recording_id=ready.id, title='gone')


def test_mp3_is_made_once_with_progress(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user('Mp3').id
    ready = record(services, user_id, webm_5s)
    seen: list[float] = []
    services.exports.mp3(user_id=user_id, recording_id=ready.id, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    size = services.storage.size(recording_mp3_key(ready))
    assert size > 1000
    again: list[float] = []
    services.exports.mp3(user_id=user_id, recording_id=ready.id, progress=again.append)
    assert again == [1.0]  # cached: no second encode
    intruder = make_user('Other').id
    with pytest.raises(NotFound):
        services.exports.mp3(user_id=intruder, recording_id=ready.id)


def test_mp3_through_the_api(api: httpx.Client, make_user: UserFactory, webm_5s: bytes) -> None:
    _, auth = make_user.with_auth()
    ready = upload(api, auth, webm_5s)
    path = f'/api/recordings/{ready["id"]}/audio'
    assert api.get(path, params={'format': 'mp3'}, headers=auth).status_code == 404
    made = api.post(f'/api/recordings/{ready["id"]}/mp3', headers=auth)
    assert made.status_code == 200
    url = made.json()['url']
    mp3 = api.get(url) if url.startswith('/') else httpx.get(url)
    assert mp3.status_code == 200
    assert mp3.headers['content-type'] == 'audio/mpeg'
    assert mp3.content[:3] == b'ID3' or mp3.content[:2] == b'\xff\xfb'
    assert 'attachment' in mp3.headers.get('content-disposition', '')


def test_share_links_expire_and_can_be_revoked(services: Services, make_user: UserFactory, webm_5s: bytes) -> None:
    user_id = make_user('Sharer').id
    ready = record(services, user_id, webm_5s)
    share = services.shares.create(user_id=user_id, recording_id=ready.id, lifetime=timedelta(days=1))
    assert services.shares.resolve(share.id)[1].id == ready.id
    assert [s.id for s in services.shares.active(user_id=user_id, recording_id=ready.id)] == [share.id]
    with services.database.session() as session:
        session.exec(update(Share).values(expires_at=utc_now() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()
    with pytest.raises(NotFound, match='expired or was revoked'):
        services.shares.resolve(share.id)
    second = services.shares.create(user_id=user_id, recording_id=ready.id, lifetime=timedelta(hours=1))
    services.shares.revoke(user_id=user_id, recording_id=ready.id, share_id=second.id)
    with pytest.raises(NotFound):
        services.shares.resolve(second.id)
    with pytest.raises(InvalidInput):
        services.shares.create(user_id=user_id, recording_id=ready.id, lifetime=timedelta(days=31))
    intruder = make_user('Intruder').id
    with pytest.raises(NotFound):
        services.shares.create(user_id=intruder, recording_id=ready.id, lifetime=timedelta(days=1))
    third = services.shares.create(user_id=user_id, recording_id=ready.id, lifetime=timedelta(days=1))
    services.recordings.delete(user_id=user_id, recording_id=ready.id)
    with pytest.raises(NotFound):
        services.shares.resolve(third.id)


def test_shares_through_the_api(api: httpx.Client, make_user: UserFactory, webm_5s: bytes) -> None:
    _, auth = make_user.with_auth()
    _, other = make_user.with_auth('Other')
    ready = upload(api, auth, webm_5s)
    path = f'/api/recordings/{ready["id"]}/shares'
    created = api.post(path, json={'expires_in_s': 3600}, headers=auth)
    assert created.status_code == 201
    assert created.json()['url'] == f'/share/{created.json()["id"]}'
    assert [s['id'] for s in api.get(path, headers=auth).json()] == [created.json()['id']]
    assert api.get(path, headers=other).status_code == 404
    assert api.post(path, json={'expires_in_s': 10}, headers=auth).status_code == 422
    assert api.delete(f'{path}/{created.json()["id"]}', headers=other).status_code == 404
    assert api.delete(f'{path}/{created.json()["id"]}', headers=auth).status_code == 204
    assert api.get(path, headers=auth).json() == []


async def test_the_public_share_page(user: User, page_services: Services, webm_5s: bytes) -> None:
    await onboard_page(user, 'Publisher')
    owner = user_id_named(page_services, 'Publisher')
    ready = record(page_services, owner, webm_5s, title='Our song')
    share = page_services.shares.create(user_id=owner, recording_id=ready.id, lifetime=timedelta(days=1))
    await user.open(f'/share/{share.id}')
    await user.should_see('Our song')
    await user.should_see(marker='audio-player')
    page_services.shares.revoke(user_id=owner, recording_id=ready.id)
    await user.open(f'/share/{share.id}')
    await user.should_see('This link has expired or was revoked.')
    await user.open('/share/not-a-uuid')
    await user.should_see('This link has expired or was revoked.')


async def test_share_dialog_creates_and_revokes_links(user: User, page_services: Services, webm_5s: bytes) -> None:
    await onboard_page(user, 'Dialog')
    owner = user_id_named(page_services, 'Dialog')
    ready = record(page_services, owner, webm_5s, title='To share')
    await user.open('/records')
    await user.should_see(marker='share-button')
    user.find(marker='share-button').click()
    await user.should_see(marker='create-share')
    user.find(marker='create-share').click()
    await user.should_see(marker='share-url')
    [share] = page_services.shares.active(user_id=owner, recording_id=ready.id)
    assert user.find(marker='share-url').elements.pop().value.endswith(f'/share/{share.id}')
    user.find(marker='revoke-share').click()
    await user.should_not_see(marker='share-url')
    assert page_services.shares.active(user_id=owner, recording_id=ready.id) == []
