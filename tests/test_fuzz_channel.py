"""Hypothesis fuzzes the audio channel (`/vr`) as a browser reaches it: the real app, a real socket.io connection.

Whatever a client sends, every event gets an answer in the channel's shape and never a server error; whatever
it connects with, it is let in or refused; and the app's log never holds a traceback.
"""

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.schemas import ChunkOut
from services.access.upload_tokens import UploadTokens
from services.core.models import RecordingPublic
from tests.support.app_server import AppServer
from tests.support.audio_samples import split

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('fuzz_channel')

SECRET = 'browser-test-secret-of-at-least-32-chars'  # AppServer's
EXAMPLES_PER_EVENT = 150
FUZZ = settings(max_examples=EXAMPLES_PER_EVENT, deadline=None, suppress_health_check=list(HealthCheck), database=None)
T = TypeVar('T')

# Numbers as clients get them wrong: bools, floats, past 32 and 64 bits (orjson reads those as floats).
NUMBERS = st.one_of(
    st.integers(-(2**40), 2**40),
    st.sampled_from([2**31 - 1, 2**31, 2**63, 2**64, 10**30, -(2**63) - 1]),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=20)
JSON = st.recursive(SCALARS | st.binary(max_size=20), containers, max_leaves=6)
JSON_TEXT = st.recursive(SCALARS, containers, max_leaves=6)  # what a connection's auth can be


# What an answer that says ok carries, checked as strictly as the browser reads it.
ANSWERS: dict[str, Callable[[dict[str, Any]], object]] = {
    'create': lambda answer: uuid.UUID(answer['recording_id']),
    'chunk': ChunkOut.model_validate,
    'finalize': lambda answer: RecordingPublic.model_validate(answer['recording']),
    'status': lambda answer: RecordingPublic.model_validate(answer['recording']),
}


class StandardJsonPacket(socketio.packet.Packet):
    """Python's json, as a browser's JSON.stringify would: NiceGUI's orjson (shared by the class once NiceGUI is
    imported) cannot even encode integers past 64 bits."""

    json = json


class Channel:
    """One connection, driven from this (synchronous) test on an event loop of its own, reopened if it drops."""

    def __init__(self, server: AppServer, token: str) -> None:
        self.server, self.token = server, token
        self.loop = asyncio.new_event_loop()
        self.client: socketio.AsyncClient | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    async def connect(self, auth: Any) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False, serializer=StandardJsonPacket)
        await client.connect(
            self.server.url,
            socketio_path='/_nicegui_ws/socket.io',
            namespaces=['/vr'],
            auth=auth,
            transports=['websocket'],
            wait_timeout=5,
        )
        return client

    async def call(self, event: str, payload: Any) -> Any:
        if self.client is None or not self.client.connected:
            self.client = await self.connect({'token': self.token})
        return await self.client.call(event, payload, namespace='/vr', timeout=10)

    def close(self) -> None:
        if self.client is not None:
            self.run(self.client.disconnect())
        self.loop.close()


@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    limits = {'VR_VR_EVENTS_PER_USER_PER_MINUTE': '1000000', 'VR_VR_CONNECTS_PER_ADDRESS_PER_MINUTE': '1000000'}
    running = AppServer(tmp_path_factory.mktemp('fuzz-channel') / 'data', env=limits).start()
    yield running
    running.stop()


@pytest.fixture(scope='module')
def user_id(server: AppServer) -> uuid.UUID:
    return uuid.UUID(httpx.post(f'{server.url}/api/onboard', json={'name': 'Fuzzer'}).json()['user_id'])


@pytest.fixture
def channel(server: AppServer, user_id: uuid.UUID) -> Iterator[Channel]:
    opened = Channel(server, UploadTokens(SECRET).issue(user_id))
    yield opened
    opened.close()


def payloads(event: str, recording_ids: list[str], pieces: list[bytes]) -> st.SearchStrategy[Any]:
    """A browser's payload; the same with any field wrong or missing; or anything at all."""
    ids = st.sampled_from(recording_ids)
    right = {
        'create': {
            'mime_type': st.sampled_from(['audio/webm;codecs=opus', 'audio/ogg']),
            'title': st.text(max_size=50),
        },
        'chunk': {'recording_id': ids, 'seq': st.integers(0, 3), 'data': st.sampled_from(pieces)},
        'finalize': {'recording_id': ids, 'chunk_count': st.integers(0, 4)},
        'status': {'recording_id': ids},
    }[event]
    any_field = {name: strategy | st.uuids().map(str) | JSON for name, strategy in right.items()}
    return st.one_of(st.fixed_dictionaries(right), st.fixed_dictionaries({}, optional=any_field), JSON)


@pytest.mark.parametrize('event', ['create', 'chunk', 'finalize', 'status'])
def test_no_event_payload_causes_a_server_error(
    channel: Channel, server: AppServer, event: str, webm_5s: bytes
) -> None:
    created = [channel.run(channel.call('create', {'mime_type': 'audio/webm'})) for _ in range(2)]
    recording_ids = [answer['recording_id'] for answer in created]
    pieces = split(webm_5s, 4000)[:3]
    first = {'recording_id': recording_ids[0], 'seq': 0, 'data': pieces[0]}
    assert channel.run(channel.call('chunk', first))['ok']  # so that a finalize can succeed too

    @given(payload=payloads(event, recording_ids, pieces))
    @FUZZ
    def fuzz(payload: Any) -> None:
        answer = channel.run(channel.call(event, payload))
        assert isinstance(answer, dict) and isinstance(answer.get('ok'), bool), answer
        if answer['ok']:
            ANSWERS[event](answer)  # raises unless the answer has the shape the browser reads
        else:
            assert 400 <= answer['status'] < 500 or answer['status'] == 503, answer
            assert isinstance(answer['error'], str) and isinstance(answer['retry'], bool), answer

    fuzz()
    server.assert_clean_log()


def test_no_connect_auth_causes_a_server_error(channel: Channel, server: AppServer, user_id: uuid.UUID) -> None:
    real = UploadTokens(SECRET).issue(user_id)
    claim = real.rpartition('.')[0]
    tokens = st.one_of(
        st.just(real),
        st.text(max_size=60),
        st.builds('{}.{}'.format, st.just(claim), st.text(max_size=70)),  # a claim with any signature
        st.builds(
            '{}.{}.{}.{}'.format,
            st.just(str(user_id)) | st.text(max_size=40),
            st.sampled_from(['1', '²', '١', '9' * 5000]) | st.text(max_size=5),
            st.sampled_from(['²', '١٢', '9' * 20, '9' * 5000]) | st.text(max_size=5),
            st.text(max_size=10),
        ),
        JSON_TEXT,
    )

    @given(auth=st.fixed_dictionaries({'token': tokens}) | JSON_TEXT)
    @FUZZ
    def fuzz(auth: Any) -> None:
        try:
            client = channel.run(channel.connect(auth))
        except socketio.exceptions.ConnectionError:
            return  # refused, as it should be unless the token is real
        channel.run(client.disconnect())
        assert auth == {'token': real}, auth

    fuzz()
    server.assert_clean_log()


def test_a_message_that_cannot_be_decoded_costs_the_log_one_line(channel: Channel, server: AppServer) -> None:
    """Numbers no JSON parser of ours holds, broken JSON, an unknown packet type: dropped, logged once per period."""
    undecodable = [{'seq': float('nan')}, {'seq': float('inf')}, {'seq': 10**400}]

    async def send() -> Any:
        await channel.call('status', {'recording_id': str(uuid.uuid4())})  # connected
        assert channel.client is not None
        for _ in range(20):
            for payload in undecodable:
                await channel.client.emit('chunk', payload, namespace='/vr')
            for raw in ('2/vr,["chunk",{', '9/vr,[]', '2/vr,7["status",{"recording_id":1e999}]'):
                await channel.client.eio.send(raw)
        return await channel.call('status', {'recording_id': str(uuid.uuid4())})  # and still answered

    before = len(server.log_path.read_text().splitlines())
    assert channel.run(send())['status'] == 404
    server.assert_clean_log()
    dropped = [line for line in server.log_path.read_text().splitlines()[before:] if 'could not be decoded' in line]
    assert len(dropped) <= 1, dropped
