"""Audio a browser held while offline is never lost because the server finished the recording early.

A browser offline for longer than `VR_STALE_RECORDING_S` (a train without signal) finds its recording already
finalized by the sweeper; the chunks it still holds are accepted late and the recording is assembled again, so
its duration matches what was recorded. Through the REST API, the way any client would see it.
"""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from services.container import Services
from services.core.models import Recording, RecordingStatus
from tests.conftest import UserFactory, fetch, stored_keys
from tests.support.audio_samples import live_webm, speech_wav, split
from tests.test_sweeper import age

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('late_audio')

LOCAL_ONLY = pytest.mark.parametrize('storage_kind', ['local'], indirect=True)


@pytest.fixture(scope='module')
def webm_20s(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp('late')
    return live_webm(speech_wav(folder / 'speech-20s.wav', 20.0), folder / 'speech-20s.webm')


@pytest.fixture
def client(api: httpx.Client, make_user: UserFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    yield api, make_user.with_auth('Commuter')[1]


def put(api: httpx.Client, auth: dict[str, str], recording_id: str, seq: int, data: bytes) -> httpx.Response:
    headers = {**auth, 'Content-Type': 'application/octet-stream'}
    return api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=data, headers=headers)


def go_idle(services: Services, recording_id: str) -> None:
    """What `VR_STALE_RECORDING_S` of silence looks like to the sweeper, without waiting for it."""
    age(services, uuid.UUID(recording_id), services.settings.stale_recording_s + 1)


def twenty_pieces(webm: bytes) -> list[bytes]:
    pieces = split(webm, len(webm) // 20 + 1)
    assert len(pieces) == 20
    return pieces


@LOCAL_ONLY
def test_late_chunks_of_an_auto_finished_recording_make_it_whole(
    services: Services, client: tuple[httpx.Client, dict[str, str]], webm_20s: bytes
) -> None:
    api, auth = client
    pieces = twenty_pieces(webm_20s)
    recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    for seq in range(10):
        assert put(api, auth, recording_id, seq, pieces[seq]).status_code == 200

    go_idle(services, recording_id)  # the browser went offline: the server finishes what it has
    services.sweeper.sweep()
    early = api.get(f'/api/recordings/{recording_id}', headers=auth).json()
    assert early['status'] == 'ready' and early['duration_ms'] < 12_000, early

    for seq in range(10, 20):  # back online: the chunks it held arrive late and are kept
        answer = put(api, auth, recording_id, seq, pieces[seq])
        assert answer.status_code == 200, answer.text
    final = api.post(f'/api/recordings/{recording_id}/finalize', headers=auth).json()
    assert final['status'] == 'ready'
    assert final['duration_ms'] == pytest.approx(20_000, abs=700), final
    assert fetch(api, final['audio_url']).content[:4] == b'\x1a\x45\xdf\xa3'
    # Confirmed by the browser: the chunks are no longer needed, and later audio is refused as usual.
    assert stored_keys(services.storage, f'recordings/{recording_id}/chunks/') == []
    assert put(api, auth, recording_id, 20, pieces[19]).status_code == 409


@LOCAL_ONLY
def test_late_chunks_are_assembled_even_if_the_browser_never_says_stop(
    services: Services, client: tuple[httpx.Client, dict[str, str]], webm_20s: bytes
) -> None:
    api, auth = client
    pieces = twenty_pieces(webm_20s)
    recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    for seq in range(10):
        put(api, auth, recording_id, seq, pieces[seq])
    go_idle(services, recording_id)
    services.sweeper.sweep()
    for seq in range(10, 20):
        assert put(api, auth, recording_id, seq, pieces[seq]).status_code == 200
    go_idle(services, recording_id)  # the tab was closed for good after uploading its backlog
    services.sweeper.sweep()
    again = api.get(f'/api/recordings/{recording_id}', headers=auth).json()
    assert again['duration_ms'] == pytest.approx(20_000, abs=700), again
    with services.database.session() as session:
        stored = session.get(Recording, uuid.UUID(recording_id))
    assert stored is not None and stored.status == RecordingStatus.READY_OPEN and stored.assembled_chunks == 20


@LOCAL_ONLY
def test_kept_chunks_are_let_go_after_the_retention_time(
    services: Services, client: tuple[httpx.Client, dict[str, str]], webm_20s: bytes
) -> None:
    api, auth = client
    pieces = twenty_pieces(webm_20s)
    recording_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    for seq in range(5):
        put(api, auth, recording_id, seq, pieces[seq])
    go_idle(services, recording_id)
    services.sweeper.sweep()
    assert stored_keys(services.storage, f'recordings/{recording_id}/chunks/')
    age(services, uuid.UUID(recording_id), services.settings.late_audio_retention_s + 1)
    services.sweeper.sweep()
    with services.database.session() as session:
        stored = session.get(Recording, uuid.UUID(recording_id))
    assert stored is not None and stored.status == RecordingStatus.READY
    assert stored_keys(services.storage, f'recordings/{recording_id}/chunks/') == []
    assert put(api, auth, recording_id, 5, pieces[5]).status_code == 409
