"""Attacks on the audio channel (`/vr`) and the chunk path, through the real server: each is refused in plain
words, the server stays healthy and small, and nobody else's audio changes."""

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from tests.support.app_server import AppServer
from tests.support.audio_samples import split
from tests.test_socket_input import call, connect, new_recording, new_user

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('abuse_channel')

QUOTA_BYTES = 300_000
# Chunk 0 of a recording that declared WebM, but is a file format that makes ffmpeg read other files.
REFERENCE_FOLLOWERS = {
    'DASH manifest': b'<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period><AdaptationSet>'
    b'<Representation><BaseURL>file:///etc/passwd</BaseURL></Representation></AdaptationSet></Period></MPD>',
    'HLS playlist': b'#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n',
    'ffconcat script': b'ffconcat version 1.0\nfile /etc/passwd\n',
    'Ogg declared as WebM': b'OggS\x00\x02' + b'\x00' * 40,
}


def rss_mb(server: AppServer) -> float:
    assert server.process is not None
    for line in Path(f'/proc/{server.process.pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    raise AssertionError('no VmRSS')


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(
        tmp_path_factory.mktemp('abuse-channel') / 'data', env={'VR_MAX_BYTES_PER_USER': str(QUOTA_BYTES)}
    ).start()
    yield running
    running.stop()
    running.assert_clean_log()


@pytest.fixture
async def channel(server: AppServer) -> AsyncIterator[socketio.AsyncClient]:
    token, _ = new_user(server)
    client = await connect(server, token)
    yield client
    await client.disconnect()


@pytest.fixture
def victim(server: AppServer, webm_5s: bytes) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """Another user's finished recording, whose bytes must never change."""
    token = httpx.post(f'{server.url}/api/onboard', json={'name': 'Victim'}).json()['token']
    auth = {'Authorization': f'Bearer {token}'}
    recording_id = httpx.post(f'{server.url}/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()[
        'id'
    ]
    for seq, piece in enumerate(split(webm_5s, 8000)):
        httpx.put(f'{server.url}/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth)
    httpx.post(f'{server.url}/api/recordings/{recording_id}/finalize', headers=auth).raise_for_status()
    yield recording_id, auth, audio_of(server, recording_id, auth)


def audio_of(server: AppServer, recording_id: str, auth: dict[str, str]) -> bytes:
    return httpx.get(f'{server.url}/api/recordings/{recording_id}/audio', headers=auth).content


def assert_unharmed(server: AppServer, victim: tuple[str, dict[str, str], bytes], rss_before: float) -> None:
    assert httpx.get(f'{server.url}/api/healthz').status_code == 200
    assert rss_mb(server) - rss_before < 40, 'the server grew'
    recording_id, auth, audio = victim
    assert hashlib.sha256(audio_of(server, recording_id, auth)).digest() == hashlib.sha256(audio).digest()


async def test_a_huge_chunk_count_is_refused_without_allocating(
    server: AppServer, channel: socketio.AsyncClient, victim: tuple[str, dict[str, str], bytes], webm_5s: bytes
) -> None:
    before = rss_mb(server)
    recording_id = await new_recording(channel)
    assert (await call(channel, 'chunk', {'recording_id': recording_id, 'seq': 0, 'data': webm_5s[:4000]}))['ok']
    for count in (3_000_000, 10**18, -1):
        answer = await call(channel, 'finalize', {'recording_id': recording_id, 'chunk_count': count})
        assert (answer['ok'], answer['status'], answer['retry']) == (False, 422, False), answer
        assert 'chunk_count must be between 0 and' in answer['error']
    # within the limit, a big gap is reported briefly: the first 100 missing seqs and how many there are
    gap = await call(channel, 'finalize', {'recording_id': recording_id, 'chunk_count': 20_000})
    assert (gap['status'], gap['missing_count'], len(gap['missing'])) == (409, 19_999, 100)
    assert gap['missing'][:3] == [1, 2, 3] and len(str(gap)) < 2_000
    assert_unharmed(server, victim, before)


@pytest.mark.parametrize('payload', REFERENCE_FOLLOWERS.values(), ids=REFERENCE_FOLLOWERS.keys())
async def test_a_first_chunk_that_is_not_the_declared_container_is_refused(
    server: AppServer,
    channel: socketio.AsyncClient,
    victim: tuple[str, dict[str, str], bytes],
    payload: bytes,
) -> None:
    before = rss_mb(server)
    recording_id = await new_recording(channel)
    answer = await call(channel, 'chunk', {'recording_id': recording_id, 'seq': 0, 'data': payload})
    assert (answer['ok'], answer['status'], answer['retry']) == (False, 422, False), answer
    assert answer['error'] in (
        'the first chunk is not WebM audio, as the recording declared',
        'this file is a playlist or a list of other files, not audio: import the audio file itself',  # named so
    )
    finalize = await call(channel, 'finalize', {'recording_id': recording_id, 'chunk_count': 1})
    assert not finalize['ok']  # nothing was stored, so nothing can be assembled
    assert_unharmed(server, victim, before)


async def test_a_full_storage_quota_refuses_more_audio_in_plain_words(
    server: AppServer, victim: tuple[str, dict[str, str], bytes], webm_5s: bytes
) -> None:
    before = rss_mb(server)
    token, _ = new_user(server)
    client = await connect(server, token)
    try:
        recording_id = await new_recording(client)
        pieces = [webm_5s[:16_000]] + [b'\x00' * 16_000] * 40  # 656 KB in all, over the 300 KB quota
        answers = [
            await call(client, 'chunk', {'recording_id': recording_id, 'seq': seq, 'data': piece})
            for seq, piece in enumerate(pieces)
        ]
    finally:
        await client.disconnect()
    accepted = [a for a in answers if a['ok']]
    refused = [a for a in answers if not a['ok']]
    assert QUOTA_BYTES - 16_000 <= 16_000 * len(accepted) <= QUOTA_BYTES
    assert refused and all((a['status'], a['retry']) == (403, False) for a in refused)
    assert refused[0]['error'].startswith('your storage is full')
    assert 'delete some recordings' in refused[0]['error']
    assert_unharmed(server, victim, before)
