"""Bad input, answered clearly, losing nothing: a table of attacks on the API, each followed by a check that
the service still works and the stored audio is untouched."""

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from services.container import Services
from services.core.models import Chunk, RecordingStatus
from services.storage.s3 import S3Storage
from tests.conftest import UserFactory, fetch, stored_keys
from tests.support.app_server import free_port
from tests.support.audio_samples import WEBM_MAGIC, split


@dataclass
class World:
    api: httpx.Client
    services: Services
    users: UserFactory
    auth: dict[str, str]
    user_id: str
    ready: dict  # a finished recording whose audio must survive every case
    open_id: str  # a recording still taking chunks: seq 0 stored
    audio: bytes
    webm: bytes
    tmp_path: Path


@pytest.fixture
def world(api: httpx.Client, services: Services, make_user: UserFactory, webm_5s: bytes, tmp_path: Path) -> World:
    target, auth = make_user.with_auth('Target')
    ready_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    for seq, piece in enumerate(split(webm_5s, 6000)):
        api.put(f'/api/recordings/{ready_id}/chunks/{seq}', content=piece, headers=auth)
    ready = api.post(f'/api/recordings/{ready_id}/finalize', headers=auth).json()
    open_id = api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=auth).json()['id']
    api.put(f'/api/recordings/{open_id}/chunks/0', content=webm_5s[:6000], headers=auth)
    audio = fetch(api, ready['audio_url']).content
    return World(api, services, make_user, auth, str(target.id), ready, open_id, audio, webm_5s, tmp_path)


def chunk(w: World, seq: object, data: bytes, recording_id: str | None = None, **headers: str) -> httpx.Response:
    return w.api.put(
        f'/api/recordings/{recording_id or w.open_id}/chunks/{seq}', content=data, headers={**w.auth, **headers}
    )


def another_user(w: World) -> dict[str, str]:
    return w.users.with_auth('Other')[1]


def garbage_finalize(w: World) -> httpx.Response:
    rid = w.api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=w.auth).json()['id']
    chunk(w, 0, WEBM_MAGIC + b'\x00garbage, not audio' * 50, rid)
    response = w.api.post(f'/api/recordings/{rid}/finalize', headers=w.auth)
    after = w.api.get(f'/api/recordings/{rid}', headers=w.auth).json()
    assert after['status'] == RecordingStatus.FAILED and after['error'], after
    assert stored_keys(w.services.storage, f'recordings/{rid}/chunks/'), 'chunks must be kept for inspection'
    return response


def revoked_token(w: World) -> httpx.Response:
    _, old = w.users.with_auth('Rotator')
    new = w.api.post('/api/token/rotate', headers=old).json()['token']
    assert w.api.get(f'/api/records/{w.user_id}', headers={'Authorization': f'Bearer {new}'}).status_code == 404
    return w.api.post('/api/recordings', json={'mime_type': 'audio/webm'}, headers=old)


def database_down(w: World) -> httpx.Response:
    working = w.services.database.engine
    w.services.database.engine = create_engine(
        f'postgresql+psycopg://nobody:x@127.0.0.1:{free_port()}/none', connect_args={'connect_timeout': 2}
    )
    try:
        health = w.api.get('/api/healthz')
        assert health.status_code == 503 and health.json()['database'].startswith('error')
        return w.api.get(f'/api/recordings/{w.ready["id"]}', headers=w.auth)
    finally:
        w.services.database.engine = working


def storage_down(w: World) -> httpx.Response:
    storage = getattr(w.services.storage, 'remote', w.services.storage)  # S3 behind the chunk spool
    if isinstance(storage, S3Storage):
        attribute, broken = 'bucket', f'vr-gone-{uuid.uuid4().hex[:8]}'  # a bucket that does not exist
    else:
        attribute, broken = 'root', w.tmp_path / 'not-a-folder' / 'audio'
        (w.tmp_path / 'not-a-folder').write_text('a file where the storage folder should be')
    working = getattr(storage, attribute)
    setattr(storage, attribute, broken)
    try:
        response = chunk(w, 1, w.webm[6000:12000])
    finally:
        setattr(storage, attribute, working)
    with w.services.database.session() as session:
        assert session.get(Chunk, (uuid.UUID(w.open_id), 1)) is None, 'a chunk that was not stored was acknowledged'
    return response


def rate_limited(w: World) -> httpx.Response:
    w.services.rate_limits.api.amount = 3
    try:
        # The fourth request should be refused. Once, on a machine busy with the whole suite, it was answered without
        # a Retry-After (its status was not kept): so up to eight are sent until one is refused, and a limiter that
        # never refuses still fails.
        for _ in range(2 * (3 + 1)):
            response = w.api.get(f'/api/profile/{w.user_id}', headers=w.auth)
            if response.status_code == 429:
                break
        assert int(response.headers['retry-after']) >= 1
        return response
    finally:
        w.services.rate_limits.api.amount = 10_000


def signed_params(w: World) -> dict[str, str]:
    """The app's own signed audio link (on S3 the audio_url is presigned, but this route still serves)."""
    expires, signature = w.services.links.signer.sign(uuid.UUID(w.ready['id']))
    return {'expires': str(expires), 'signature': signature}


def signed(w: World, **changes: object) -> httpx.Response:
    return w.api.get(f'/api/recordings/{w.ready["id"]}/audio', params={**signed_params(w), **changes})


CASES: list[tuple[str, Callable[[World], httpx.Response], int, str]] = [
    ('oversize chunk', lambda w: chunk(w, 1, b'x' * (w.services.settings.max_chunk_bytes + 1)), 413, 'at most'),
    ('empty chunk', lambda w: chunk(w, 1, b''), 422, 'empty'),
    ('negative seq', lambda w: chunk(w, -1, b'abc'), 422, 'seq'),
    ('huge seq', lambda w: chunk(w, 10**6, b'abc'), 403, 'maximum length'),
    ('seq past any recording', lambda w: chunk(w, 10**12, b'abc'), 422, 'seq: input should be less than or equal'),
    ('non-integer seq', lambda w: chunk(w, '1.5', b'abc'), 422, 'seq: input should be a valid integer'),
    ('duplicate seq, other bytes', lambda w: chunk(w, 0, b'tampered'), 409, 'different bytes'),
    ('chunk after finalize', lambda w: chunk(w, 99, b'late', w.ready['id']), 409, 'already finished'),
    (
        'finalize with gaps',
        lambda w: (
            chunk(w, 2, w.webm[12000:18000]),
            w.api.post(f'/api/recordings/{w.open_id}/finalize', headers=w.auth),
        )[1],
        409,
        'missing',
    ),
    ('finalize twice', lambda w: w.api.post(f'/api/recordings/{w.ready["id"]}/finalize', headers=w.auth), 200, ''),
    ('garbage audio', garbage_finalize, 422, 'could not be processed'),
    (
        'chunk with a JSON content type',
        lambda w: chunk(w, 1, b'{}', **{'Content-Type': 'application/json'}),
        415,
        'raw bytes',
    ),
    (
        'JSON sent as text/plain',
        lambda w: w.api.post(
            '/api/recordings', content=b'{"mime_type": "audio/webm"}', headers={**w.auth, 'Content-Type': 'text/plain'}
        ),
        422,
        'the request body must be a JSON object',
    ),
    (
        'malformed JSON',
        lambda w: w.api.post(
            '/api/recordings', content=b'{"mime_type": ', headers={**w.auth, 'Content-Type': 'application/json'}
        ),
        422,
        'the request body is not valid JSON',
    ),
    (
        'unknown fields',
        lambda w: w.api.patch(
            f'/api/recordings/{w.ready["id"]}', json={'title': 'x', 'user_id': str(uuid.uuid4())}, headers=w.auth
        ),
        422,
        "unknown field 'user_id'",
    ),
    ('non-UUID id', lambda w: w.api.get('/api/recordings/12345', headers=w.auth), 422, 'recording_id must be an id'),
    (
        'path traversal id',
        lambda w: w.api.get('/api/recordings/..%2F..%2Fsecret.key', headers=w.auth),
        404,
        'not found',
    ),
    ('dot-dot encoded id', lambda w: w.api.get('/api/recordings/%2e%2e', headers=w.auth), 422, 'must be an id'),
    ('NUL in id', lambda w: w.api.get('/api/recordings/%00', headers=w.auth), 422, 'must be an id'),
    (
        'unsupported audio type',
        lambda w: w.api.post('/api/recordings', json={'mime_type': 'text/html'}, headers=w.auth),
        422,
        'unsupported audio type',
    ),
    (
        '10 kB name',
        lambda w: w.api.post('/api/onboard', json={'name': 'x' * 10_000}),
        422,
        'name: string should have at most',
    ),
    (
        'empty title',
        lambda w: w.api.patch(f'/api/recordings/{w.ready["id"]}', json={'title': '   '}, headers=w.auth),
        422,
        'cannot be empty',
    ),
    (
        "another user's recording",
        lambda w: w.api.get(f'/api/recordings/{w.ready["id"]}', headers=another_user(w)),
        404,
        'not found',
    ),
    (
        "another user's audio",
        lambda w: w.api.get(f'/api/recordings/{w.ready["id"]}/audio', headers=another_user(w)),
        404,
        'not found',
    ),
    ('expired signed URL', lambda w: signed(w, expires=1), 403, 'expired'),
    ('tampered signed URL', lambda w: signed(w, signature='0' * 64), 403, 'not valid'),
    ('non-ASCII signature (found by the fuzzer)', lambda w: signed(w, signature='é' * 64), 403, 'not valid'),
    (
        'signed URL of another recording',
        lambda w: w.api.get(f'/api/recordings/{w.open_id}/audio', params=signed_params(w)),
        403,
        'not valid',
    ),
    ('missing token', lambda w: w.api.get(f'/api/recordings/{w.ready["id"]}'), 401, 'missing bearer token'),
    ('revoked token', revoked_token, 401, 'invalid'),
    ('too many requests', rate_limited, 429, 'too many requests'),
    ('database unreachable', database_down, 503, 'database is unreachable'),
    ('storage unreachable', storage_down, 503, 'storage is unavailable'),
]


# Cases whose answer depends on the database or the storage run on every backend combination; the rest are
# answered before either is reached (parsing, validation, signatures), the same on all four, so one is enough.
REACHING_THE_BACKENDS = {
    'oversize chunk',
    'duplicate seq, other bytes',
    'chunk after finalize',
    'finalize with gaps',
    'finalize twice',
    'garbage audio',
    "another user's recording",
    "another user's audio",
    'signed URL of another recording',
    'revoked token',
    'database unreachable',
    'storage unreachable',
}
BACKEND_CASES = [case for case in CASES if case[0] in REACHING_THE_BACKENDS]
FRONT_CASES = [case for case in CASES if case[0] not in REACHING_THE_BACKENDS]
CASE_FIELDS = ('case', 'attempt', 'status', 'message')


@pytest.mark.parametrize(CASE_FIELDS, BACKEND_CASES, ids=[c[0] for c in BACKEND_CASES])
def test_bad_input_gets_a_clear_answer_and_loses_nothing(
    world: World, case: str, attempt: Callable[[World], httpx.Response], status: int, message: str
) -> None:
    assert_clear_answer_and_nothing_lost(world, case, attempt, status, message)


@pytest.mark.parametrize('database_kind', ['sqlite'], indirect=True)
@pytest.mark.parametrize('storage_kind', ['local'], indirect=True)
@pytest.mark.parametrize(CASE_FIELDS, FRONT_CASES, ids=[c[0] for c in FRONT_CASES])
def test_bad_input_refused_before_the_backends_gets_a_clear_answer_and_loses_nothing(
    world: World, case: str, attempt: Callable[[World], httpx.Response], status: int, message: str
) -> None:
    assert_clear_answer_and_nothing_lost(world, case, attempt, status, message)


def assert_clear_answer_and_nothing_lost(
    world: World, case: str, attempt: Callable[[World], httpx.Response], status: int, message: str
) -> None:
    response = attempt(world)
    assert response.status_code == status, (case, response.text)
    if status >= 400:
        body = response.json()
        assert isinstance(body, dict)
        text = str(body.get('error') or body.get('detail'))
        assert message.lower() in text.lower(), (case, body)
        assert 'Traceback' not in response.text
    # ...and afterwards everything still works and nothing stored was touched
    assert world.api.get('/api/healthz').status_code == 200
    assert fetch(world.api, world.ready['audio_url']).content == world.audio
    assert (
        hashlib.sha256(world.audio).hexdigest()
        == hashlib.sha256(
            world.api.get(f'/api/recordings/{world.ready["id"]}/audio', headers=world.auth).content
        ).hexdigest()
    )
    assert (
        world.api.put(
            f'/api/recordings/{world.open_id}/chunks/0', content=world.webm[:6000], headers=world.auth
        ).status_code
        == 200
    )  # seq 0 is still the original bytes


@pytest.mark.parametrize(
    'name',
    ['Zoë 🎙️ 録音', "Robert'); DROP TABLE user;--", '<img src=x onerror=alert(1)>', '../../etc/passwd', 'a\u202eb'],
)
def test_odd_but_valid_names_and_titles_are_kept_literally(world: World, name: str) -> None:
    created = world.api.post('/api/onboard', json={'name': name})
    assert created.status_code == 201
    assert created.json()['name'] == ' '.join(name.split())
    renamed = world.api.patch(f'/api/recordings/{world.ready["id"]}', json={'title': name}, headers=world.auth)
    assert renamed.status_code == 200
    assert renamed.json()['title'] == ''.join(ch for ch in name if ch.isprintable())
    assert fetch(world.api, world.ready['audio_url']).content == world.audio


def test_nul_is_stripped_from_titles(world: World) -> None:
    renamed = world.api.patch(f'/api/recordings/{world.ready["id"]}', json={'title': 'a\x00b'}, headers=world.auth)
    assert renamed.json()['title'] == 'ab'


@pytest.fixture(autouse=True)
def _generous_rate_limit(services: Services) -> Iterator[None]:
    services.rate_limits.api.amount = 10_000
    yield
