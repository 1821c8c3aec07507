"""The audio channel (`/vr` on NiceGUI's socket.io server) refuses bad input clearly, over a real connection."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from services.access.upload_tokens import UploadTokens
from tests.support.app_server import AppServer
from tests.support.audio_samples import split

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('socket_input')

SECRET = 'browser-test-secret-of-at-least-32-chars'


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(tmp_path_factory.mktemp('socket') / 'data').start()
    yield running
    running.stop()
    running.assert_clean_log()  # bad input is refused with answers, never with a traceback


async def connect(server: AppServer, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url,
        socketio_path='/_nicegui_ws/socket.io',
        namespaces=['/vr'],
        auth={'token': token},
        transports=['websocket'],
        wait_timeout=5,
    )
    return client


def new_user(server: AppServer) -> tuple[str, str]:
    body = httpx.post(f'{server.url}/api/onboard', json={'name': 'Socket'}).json()
    return UploadTokens(SECRET).issue(uuid.UUID(body['user_id'])), body['token']


@pytest.fixture
async def channel(server: AppServer) -> AsyncIterator[socketio.AsyncClient]:
    token, _ = new_user(server)
    client = await connect(server, token)
    yield client
    await client.disconnect()


async def call(client: socketio.AsyncClient, event: str, payload: Any) -> dict[str, Any]:
    return await client.call(event, payload, namespace='/vr', timeout=10)


async def new_recording(client: socketio.AsyncClient) -> str:
    answer = await call(client, 'create', {'mime_type': 'audio/webm;codecs=opus', 'title': 'socket test'})
    assert answer['ok'], answer
    return answer['recording_id']


@pytest.mark.parametrize(
    'token',
    ['', 'garbage', 'a.b.c', UploadTokens('wrong secret').issue(uuid.uuid4())],
    ids=['empty', 'garbage', 'three dots', 'signed with another secret'],  # one id on every xdist worker
)
async def test_a_bad_upload_token_is_refused_at_connect(server: AppServer, token: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(server, token)


async def test_bad_chunks_get_clear_answers_and_good_ones_still_work(
    channel: socketio.AsyncClient, server: AppServer, webm_5s: bytes
) -> None:
    recording_id = await new_recording(channel)
    good = {'recording_id': recording_id, 'seq': 0, 'data': webm_5s[:4000]}
    assert (await call(channel, 'chunk', good))['ok']
    bad: list[tuple[Any, int, str]] = [
        ('not a dict', 422, 'malformed'),
        ({**good, 'data': 'text, not bytes'}, 422, 'binary'),
        ({**good, 'data': b''}, 422, 'empty'),
        ({**good, 'seq': '1'}, 422, 'whole number'),
        ({**good, 'seq': -3}, 422, 'seq'),
        ({**good, 'seq': True}, 422, 'whole number'),
        ({**good, 'seq': 1, 'data': b'x' * (512 * 1024 + 1)}, 413, 'at most'),
        ({**good, 'data': b'other bytes'}, 409, 'different bytes'),
        ({**good, 'recording_id': 'not-a-uuid'}, 404, 'not found'),
        ({**good, 'recording_id': '00000000-0000-0000-0000-000000000000'}, 404, 'not found'),
    ]
    for payload, status, message in bad:
        answer = await call(channel, 'chunk', payload)
        assert (answer['ok'], answer['status'], answer['retry']) == (False, status, False), (payload, answer)
        assert message in answer['error']
    gap = await call(channel, 'finalize', {'recording_id': recording_id, 'chunk_count': 3})
    assert (gap['ok'], gap['status'], gap['missing']) == (False, 409, [1, 2])
    for seq, piece in enumerate(split(webm_5s, 4000)):
        assert (await call(channel, 'chunk', {'recording_id': recording_id, 'seq': seq, 'data': piece}))['ok']
    done = await call(channel, 'finalize', {'recording_id': recording_id, 'chunk_count': len(split(webm_5s, 4000))})
    assert done['ok'] and done['recording']['status'] == 'ready'
    late = await call(channel, 'chunk', {'recording_id': recording_id, 'seq': 99, 'data': b'late'})
    assert (late['status'], 'already finished' in late['error']) == (409, True)


async def test_another_users_recording_cannot_be_touched(
    server: AppServer, channel: socketio.AsyncClient, webm_5s: bytes
) -> None:
    recording_id = await new_recording(channel)
    token, _ = new_user(server)
    intruder = await connect(server, token)
    try:
        for event, payload in [
            ('chunk', {'recording_id': recording_id, 'seq': 0, 'data': b'x'}),
            ('finalize', {'recording_id': recording_id, 'chunk_count': 1}),
            ('status', {'recording_id': recording_id}),
        ]:
            answer = await call(intruder, event, payload)
            assert (answer['ok'], answer['status']) == (False, 404), (event, answer)
    finally:
        await intruder.disconnect()
    assert (await call(channel, 'status', {'recording_id': recording_id}))['recording']['status'] == 'recording'


async def test_past_capacity_the_server_says_busy_and_every_retry_lands(tmp_path: Path, webm_5s: bytes) -> None:
    busy_server = AppServer(tmp_path / 'data', env={'VR_MAX_CHUNKS_IN_FLIGHT': '1'}).start()
    try:
        token, _ = new_user(busy_server)
        client = await connect(busy_server, token)
        recording_id = await new_recording(client)
        pieces = split(webm_5s, 2000)
        answers = await asyncio.gather(
            *[
                call(client, 'chunk', {'recording_id': recording_id, 'seq': seq, 'data': piece})
                for seq, piece in enumerate(pieces)
            ]
        )
        busy = [a for a in answers if not a['ok']]
        assert busy and all((a['status'], a['retry']) == (503, True) for a in busy)
        for seq, answer in enumerate(answers):  # what the browser does: send the refused ones again
            while not answer['ok']:
                await asyncio.sleep(0.05)
                answer = await call(client, 'chunk', {'recording_id': recording_id, 'seq': seq, 'data': pieces[seq]})
        done = await call(client, 'finalize', {'recording_id': recording_id, 'chunk_count': len(pieces)})
        assert done['ok'] and done['recording']['duration_ms'] == pytest.approx(5000, abs=200)
        await client.disconnect()
    finally:
        busy_server.stop()
