"""The REST API end to end over HTTP: every endpoint, its auth, and another user's data staying invisible."""

import time
import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.container import Services
from services.core.version import app_version
from services.recordings.download_names import content_disposition, download_name
from services.recordings.service import recording_prefix
from tests.conftest import UserFactory, fetch, stored_keys
from tests.support.audio_samples import split


def upload(api: httpx.Client, auth: dict[str, str], audio: bytes, title: str | None = None) -> dict:
    created = api.post('/api/recordings', json={'mime_type': 'audio/webm;codecs=opus', 'title': title}, headers=auth)
    assert created.status_code == 201, created.text
    recording_id = created.json()['id']
    for seq, piece in enumerate(split(audio, 6000)):
        response = api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth)
        assert response.json() == {'seq': seq, 'size': len(piece)}
    finalized = api.post(f'/api/recordings/{recording_id}/finalize', headers=auth)
    assert finalized.status_code == 200, finalized.text
    return finalized.json()


def test_onboard_returns_a_token_that_is_stored_only_as_a_hash(api: httpx.Client, services: Services) -> None:
    response = api.post('/api/onboard', json={'name': '  Grace Hopper '})
    assert response.status_code == 201
    body = response.json()
    assert body['name'] == 'Grace Hopper'
    stored = services.users.get(uuid.UUID(body['user_id']))
    assert body['token'] not in stored.token_hash
    assert services.users.authenticate(body['token']).id == stored.id


@pytest.mark.parametrize('body', [{'name': ''}, {'name': 'x' * 51}, {}, {'name': 'a', 'admin': True}])
def test_onboard_rejects_bad_names(api: httpx.Client, body: dict) -> None:
    response = api.post('/api/onboard', json=body)
    assert response.status_code == 422


def test_profile_counts_recordings(api: httpx.Client, make_user: UserFactory) -> None:
    user, auth = make_user.with_auth()
    api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth)
    profile = api.get(f'/api/profile/{user.id}', headers=auth).json()
    assert (profile['user_id'], profile['name'], profile['recording_count']) == (str(user.id), 'Ada', 1)
    assert profile['created_at'].endswith(('+00:00', 'Z'))


@pytest.mark.parametrize('headers', [{}, {'Authorization': 'Bearer nope'}, {'Authorization': 'Basic abc'}])
def test_calls_without_a_valid_token_get_401(
    api: httpx.Client, make_user: UserFactory, headers: dict[str, str]
) -> None:
    user = make_user()
    for method, path in [
        ('GET', f'/api/profile/{user.id}'),
        ('GET', f'/api/records/{user.id}'),
        ('POST', '/api/recordings'),
        ('GET', f'/api/recordings/{uuid.uuid4()}'),
    ]:
        response = api.request(method, path, headers=headers, json={'mime_type': 'audio/webm'})
        assert response.status_code == 401, (method, path)
        assert 'error' in response.json()


def test_full_recording_lifecycle(
    api: httpx.Client, make_user: UserFactory, webm_5s: bytes, services: Services
) -> None:
    user, auth = make_user.with_auth()
    ready = upload(api, auth, webm_5s, title='Morning notes')
    assert ready['status'] == 'ready'
    assert ready['duration_ms'] == pytest.approx(5000, abs=200)
    assert ready['size_bytes'] > 0
    assert ready['mime_type'] == 'audio/webm'
    assert api.get(f'/api/recordings/{ready["id"]}', headers=auth).json()['title'] == 'Morning notes'

    renamed = api.patch(f'/api/recordings/{ready["id"]}', json={'title': 'Evening notes'}, headers=auth)
    assert renamed.json()['title'] == 'Evening notes'

    listed = api.get(f'/api/records/{user.id}', headers=auth).json()
    assert [item['id'] for item in listed] == [ready['id']]

    assert fetch(api, ready['audio_url']).status_code == 200
    assert api.delete(f'/api/recordings/{ready["id"]}', headers=auth).status_code == 204
    assert api.get(f'/api/recordings/{ready["id"]}', headers=auth).status_code == 404
    assert fetch(api, ready['audio_url']).status_code in (403, 404)  # S3 answers 403 without ListBucket rights
    assert stored_keys(services.storage, recording_prefix(uuid.UUID(ready['id']))) == []


def test_records_are_newest_first_with_limit_and_offset(api: httpx.Client, make_user: UserFactory) -> None:
    user, auth = make_user.with_auth()
    ids = [
        api.post('/api/recordings', json={'mime_type': 'audio/webm', 'title': f't{i}'}, headers=auth).json()['id']
        for i in range(4)
    ]
    page = api.get(f'/api/records/{user.id}?limit=2&offset=1', headers=auth).json()
    assert [item['id'] for item in page] == [ids[2], ids[1]]
    assert page[0]['audio_url'] is None  # not finalized yet
    assert api.get(f'/api/records/{user.id}?limit=0', headers=auth).status_code == 422


def test_finalize_with_a_gap_is_409_with_the_missing_seqs(
    api: httpx.Client, make_user: UserFactory, webm_5s: bytes
) -> None:
    _, auth = make_user.with_auth()
    recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    pieces = split(webm_5s, 6000)
    for seq in (0, 2):
        api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=pieces[seq], headers=auth)
    response = api.post(f'/api/recordings/{recording_id}/finalize', headers=auth)
    assert response.status_code == 409
    assert response.json()['missing'] == [1]


def test_oversize_chunk_is_413_and_not_stored(api: httpx.Client, make_user: UserFactory, services: Services) -> None:
    _, auth = make_user.with_auth()
    recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    too_big = b'x' * (services.settings.max_chunk_bytes + 1)
    response = api.put(f'/api/recordings/{recording_id}/chunks/0', content=too_big, headers=auth)
    assert response.status_code == 413
    assert 'at most' in response.json()['error']
    assert api.post(f'/api/recordings/{recording_id}/finalize', headers=auth).status_code == 409


def test_another_users_recording_is_404_everywhere(api: httpx.Client, make_user: UserFactory, webm_5s: bytes) -> None:
    owner, owner_auth = make_user.with_auth('Owner')
    _, intruder = make_user.with_auth('Intruder')
    ready = upload(api, owner_auth, webm_5s)
    path = f'/api/recordings/{ready["id"]}'
    attempts = [
        api.get(path, headers=intruder),
        api.patch(path, json={'title': 'x'}, headers=intruder),
        api.delete(path, headers=intruder),
        api.post(f'{path}/finalize', headers=intruder),
        api.put(f'{path}/chunks/0', content=b'x', headers=intruder),
        api.get(f'{path}/audio', headers=intruder),
        api.get(f'/api/records/{owner.id}', headers=intruder),
        api.get(f'/api/profile/{owner.id}', headers=intruder),
    ]
    assert [a.status_code for a in attempts] == [404] * len(attempts)
    assert api.get(path, headers=owner_auth).json()['title'] == ready['title']


def test_signed_audio_url_plays_and_seeks_without_a_header(
    api: httpx.Client, make_user: UserFactory, webm_5s: bytes, services: Services
) -> None:
    """The browser's view: the audio_url alone plays and seeks, whether the app or S3 serves it."""
    user, auth = make_user.with_auth()
    ready = upload(api, auth, webm_5s)
    whole = fetch(api, ready['audio_url'])
    assert whole.status_code == 200
    assert whole.headers['content-type'] == 'audio/webm'
    assert whole.headers['accept-ranges'] == 'bytes'
    assert len(whole.content) == ready['size_bytes']
    part = fetch(api, ready['audio_url'], headers={'Range': 'bytes=100-199'})
    assert part.status_code == 206
    assert part.headers['content-range'] == f'bytes 100-199/{ready["size_bytes"]}'
    assert part.content == whole.content[100:200]
    tail = fetch(api, ready['audio_url'], headers={'Range': 'bytes=-50'})
    assert tail.content == whole.content[-50:]
    beyond = fetch(api, ready['audio_url'], headers={'Range': f'bytes={ready["size_bytes"]}-'})
    assert beyond.status_code == 416
    recording = services.recordings.get(user_id=user.id, recording_id=uuid.UUID(ready['id']))
    download = fetch(api, services.links.url(recording, download=True))
    assert download.headers['content-disposition'] == content_disposition(download_name(recording))
    assert download_name(recording) == f'{recording.title.replace(":", "-")}.webm'  # the default title holds the day
    assert download.content == whole.content
    with_token = api.get(f'/api/recordings/{ready["id"]}/audio', headers=auth)
    assert with_token.content == whole.content


@pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
def test_tampered_or_expired_audio_urls_are_403(
    api: httpx.Client, make_user: UserFactory, webm_5s: bytes, services: Services
) -> None:
    _, auth = make_user.with_auth()
    ready = upload(api, auth, webm_5s)
    query = parse_qs(urlparse(ready['audio_url']).query)
    assert int(query['expires'][0]) == pytest.approx(time.time() + services.settings.audio_url_expiry_s, abs=5)
    path = f'/api/recordings/{ready["id"]}/audio'
    expires, signature = int(query['expires'][0]), query['signature'][0]
    tampered = api.get(path, params={'expires': expires + 1000, 'signature': signature})
    past = int(time.time()) - 1
    signed_at = past - services.settings.audio_url_expiry_s
    _, past_signature = services.links.signer.sign(uuid.UUID(ready['id']), now=signed_at)
    expired = api.get(path, params={'expires': past, 'signature': past_signature})
    other = upload(api, auth, webm_5s)
    reused = api.get(f'/api/recordings/{other["id"]}/audio', params={'expires': expires, 'signature': signature})
    assert [tampered.status_code, expired.status_code, reused.status_code] == [403, 403, 403]


def test_non_uuid_ids_are_422(api: httpx.Client, make_user: UserFactory) -> None:
    _, auth = make_user.with_auth()
    assert api.get('/api/recordings/not-a-uuid', headers=auth).status_code == 422
    assert api.get('/api/recordings/..%2f..%2fetc', headers=auth).status_code in (404, 422)


def test_healthz_reports_each_part(api: httpx.Client) -> None:
    response = api.get('/api/healthz')
    assert response.status_code == 200
    assert response.json() == {'status': 'ok', 'version': app_version(), 'database': 'ok', 'storage': 'ok'}
