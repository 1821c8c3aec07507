"""Safari's recordings (every iPhone): AAC in fragmented MP4, through the REST API and the audio channel.

There is no Safari here, so its shape is made with ffmpeg: AAC (`mp4a.40.2`) in fragmented MP4 (`ftyp`, an empty
`moov`, then `moof`+`mdat` pairs), cut the ways MediaRecorder hands it over: arbitrary byte slices of about a
second, whole fragments, or everything at once when Safari ignores the timeslice and delivers only at Stop.
Finalize must give a seekable `.m4a` with its index in front, served as `audio/mp4` with ranges, with a waveform
and an MP3.
"""

import asyncio
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from services.access.upload_tokens import UploadTokens
from services.audio.ffmpeg import ffmpeg_executable
from services.container import Services
from services.recordings.download_names import content_disposition, download_name
from tests.conftest import UserFactory, fetch
from tests.support.app_server import AppServer
from tests.support.audio_samples import split

# One xdist worker runs this module, so its module-scoped server starts once.
pytestmark = pytest.mark.xdist_group('safari_format')

SAFARI_TYPE = 'audio/mp4;codecs=mp4a.40.2'
SECRET = 'browser-test-secret-of-at-least-32-chars'  # AppServer's
SQLITE_LOCAL = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)


def boxes(data: bytes) -> Iterator[tuple[str, int, int]]:
    """The top-level MP4 boxes: (type, offset, size)."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack('>I4s', data[offset : offset + 8])
        if size == 1:  # a 64-bit size follows the type
            size = struct.unpack('>Q', data[offset + 8 : offset + 16])[0]
        yield kind.decode('latin-1'), offset, size or len(data) - offset
        offset += size or len(data)


def box_order(data: bytes) -> list[str]:
    return [kind for kind, _offset, _size in boxes(data)]


@pytest.fixture(scope='session')
def safari_mp4(speech_5s: Path) -> bytes:
    """5 s of speech as Safari's MediaRecorder writes it: AAC-LC in fragmented MP4, one fragment a second."""
    aac = ('-c:a', 'aac', '-b:a', '64k')
    fragmented = ('-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '1000000')
    result = subprocess.run(
        [ffmpeg_executable(), '-v', 'error', '-i', str(speech_5s), *aac, *fragmented, 'pipe:1'],
        check=True,
        capture_output=True,
    )
    data = result.stdout
    assert data[4:8] == b'ftyp' and box_order(data)[:3] == ['ftyp', 'moov', 'moof'], box_order(data)
    assert b'mp4a' in data[:2000]  # AAC, as Safari records
    return data


def by_fragment(data: bytes) -> list[bytes]:
    """One chunk per `moof`+`mdat` pair; the header (`ftyp`, `moov`) travels with the first, as Safari sends it."""
    starts = [offset for kind, offset, _size in boxes(data) if kind == 'moof'][1:]
    return [data[a:b] for a, b in zip([0, *starts], [*starts, len(data)], strict=True)]


CUTTINGS = {
    'byte slices of about a second': lambda data: split(data, len(data) // 5 + 1),
    'whole fragments': by_fragment,
    'everything at Stop': lambda data: [data],  # a timeslice Safari ignored; the browser splits only past the limit
}


def upload(api: httpx.Client, auth: dict[str, str], chunks: list[bytes]) -> dict[str, Any]:
    created = api.post('/api/recordings', json={'mime_type': SAFARI_TYPE, 'title': 'From an iPhone'}, headers=auth)
    assert created.status_code == 201, created.text
    recording_id = created.json()['id']
    for seq, piece in enumerate(chunks):
        response = api.put(f'/api/recordings/{recording_id}/chunks/{seq}', content=piece, headers=auth)
        assert response.status_code == 200, response.text
    finalized = api.post(f'/api/recordings/{recording_id}/finalize', headers=auth)
    assert finalized.status_code == 200, finalized.text
    return dict(finalized.json())


def assert_seekable_m4a(data: bytes) -> None:
    """One plain MP4 (no fragments left) whose index (`moov`) comes before the audio, holding AAC."""
    order = box_order(data)
    assert order[0] == 'ftyp' and 'moof' not in order, order
    assert order.index('moov') < order.index('mdat'), f'the index must come first (+faststart): {order}'
    _kind, offset, size = next(box for box in boxes(data) if box[0] == 'moov')
    index = data[offset : offset + size]
    assert b'mp4a' in index, 'the audio is still AAC (stream-copied, never re-encoded)'
    assert b'mvex' not in index, 'no fragments announced: the index covers the whole file'


def decoded_seconds(data: bytes, tmp_path: Path, suffix: str) -> float:
    path = tmp_path / f'decoded.{suffix}'
    path.write_bytes(data)
    pcm = subprocess.run(
        [ffmpeg_executable(), '-v', 'error', '-i', str(path), '-ac', '1', '-ar', '8000', '-f', 's16le', 'pipe:1'],
        check=True,
        capture_output=True,
    ).stdout
    return len(pcm) / 2 / 8000


@SQLITE_LOCAL
@pytest.mark.parametrize('cutting', list(CUTTINGS))
def test_safari_chunks_over_rest_finalize_to_a_seekable_m4a(
    api: httpx.Client, make_user: UserFactory, safari_mp4: bytes, cutting: str, tmp_path: Path
) -> None:
    _, auth = make_user.with_auth('Safari Sam')
    chunks = CUTTINGS[cutting](safari_mp4)
    assert b''.join(chunks) == safari_mp4
    ready = upload(api, auth, chunks)
    assert (ready['status'], ready['mime_type']) == ('ready', 'audio/mp4')
    assert ready['duration_ms'] == pytest.approx(5000, abs=150)
    stored = fetch(api, ready['audio_url'])
    assert stored.status_code == 200
    assert_seekable_m4a(stored.content)
    assert decoded_seconds(stored.content, tmp_path, 'm4a') == pytest.approx(5.0, abs=0.15)


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local'), ('postgresql', 's3')], indirect=True)
def test_a_safari_recording_is_served_as_mp4_with_ranges_a_waveform_an_mp3_and_an_m4a_name(
    api: httpx.Client, services: Services, make_user: UserFactory, safari_mp4: bytes, tmp_path: Path
) -> None:
    _, auth = make_user.with_auth('Safari Sam')
    ready = upload(api, auth, CUTTINGS['byte slices of about a second'](safari_mp4))
    recording_id = uuid.UUID(ready['id'])

    whole = fetch(api, ready['audio_url'])
    assert whole.status_code == 200
    assert whole.headers['content-type'] == 'audio/mp4'
    assert len(whole.content) == ready['size_bytes']
    part = fetch(api, ready['audio_url'], headers={'Range': 'bytes=1000-1999'})
    assert part.status_code == 206
    assert part.headers['content-range'] == f'bytes 1000-1999/{ready["size_bytes"]}'
    assert part.content == whole.content[1000:2000]

    recording = services.recordings.get(user_id=services.recordings.owner_of(recording_id), recording_id=recording_id)
    download = fetch(api, services.links.url(recording, download=True))
    assert download.headers['content-disposition'] == content_disposition(download_name(recording))
    assert download_name(recording).endswith('.m4a')
    assert download.content == whole.content

    deadline = time.monotonic() + 30  # the waveform is computed in the background after finalize
    while not (peaks := services.recordings.get(user_id=recording.user_id, recording_id=recording_id).peaks):
        assert time.monotonic() < deadline, 'no waveform was computed'
        time.sleep(0.1)
    values = [float(value) for value in peaks.strip('[]').split(',') if value]
    assert len(values) > 50 and max(values) == 1.0 and min(values) < 0.5, values  # speech: loud and quiet stretches

    made = api.post(f'/api/recordings/{recording_id}/mp3', headers=auth)
    assert made.status_code == 200, made.text
    mp3 = fetch(api, made.json()['url'])
    assert mp3.status_code == 200
    assert mp3.headers['content-type'] == 'audio/mpeg'
    assert mp3.headers['content-disposition'] == content_disposition(download_name(recording, mp3=True))
    assert decoded_seconds(mp3.content, tmp_path, 'mp3') == pytest.approx(5.0, abs=0.2)


# ---- the audio channel, as the recorder page sends: binary socket.io events on /vr ----------------------------
@pytest.fixture(scope='module')
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    running = AppServer(tmp_path_factory.mktemp('safari') / 'data').start()
    yield running
    running.stop()
    running.assert_clean_log()


async def channel_for_new_user(server: AppServer) -> tuple[socketio.AsyncClient, dict[str, str]]:
    body = httpx.post(f'{server.url}/api/onboard', json={'name': 'Socket Safari'}).json()
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        server.url,
        socketio_path='/_nicegui_ws/socket.io',
        namespaces=['/vr'],
        auth={'token': UploadTokens(SECRET).issue(uuid.UUID(body['user_id']))},
        transports=['websocket'],
        wait_timeout=5,
    )
    return client, {'Authorization': f'Bearer {body["token"]}'}


@pytest.mark.parametrize('cutting', list(CUTTINGS))
async def test_safari_chunks_over_the_audio_channel_finalize_to_a_seekable_m4a(
    server: AppServer, safari_mp4: bytes, cutting: str
) -> None:
    client, auth = await channel_for_new_user(server)
    try:
        call = lambda event, payload: client.call(event, payload, namespace='/vr', timeout=30)  # noqa: E731
        created = await call('create', {'mime_type': SAFARI_TYPE, 'title': 'From an iPhone'})
        assert created['ok'], created
        chunks = CUTTINGS[cutting](safari_mp4)
        answers = await asyncio.gather(  # sent at once, as the page does after a reconnect: order comes from seq
            *[
                call('chunk', {'recording_id': created['recording_id'], 'seq': seq, 'data': piece})
                for seq, piece in enumerate(chunks)
            ]
        )
        assert all(answer['ok'] for answer in answers), answers
        done = await call('finalize', {'recording_id': created['recording_id'], 'chunk_count': len(chunks)})
        assert done['ok'], done
        assert done['recording']['duration_ms'] == pytest.approx(5000, abs=150)
    finally:
        await client.disconnect()
    ready = httpx.get(f'{server.url}/api/recordings/{created["recording_id"]}', headers=auth).json()
    assert ready['mime_type'] == 'audio/mp4'
    audio = httpx.get(f'{server.url}{ready["audio_url"]}', headers={'Range': 'bytes=0-'})
    assert (audio.status_code, audio.headers['content-type']) == (206, 'audio/mp4')
    assert_seekable_m4a(audio.content)
