"""Importing audio files (issue 24): each accepted type round-trips through the REST API as a script would send it,
and hostile or broken files are refused in plain words at the door or at finalize, leaving nothing behind.

The files are made once with ffmpeg from the 5-s speech fixture; the round trips run on SQLite and a local folder
(one type also on PostgreSQL and S3), since what an import adds is the same on every backend.
"""

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.audio.ffmpeg import ffmpeg_executable
from services.container import Services
from services.transcripts.engine import Transcriber
from tests.conftest import UserFactory, fetch, in_process_worker, stored_keys
from tests.support.audio_samples import decoded_sha256, split

pytestmark = pytest.mark.xdist_group('imports')

SQLITE_LOCAL = pytest.mark.parametrize(('database_kind', 'storage_kind'), [('sqlite', 'local')], indirect=True)
# The speech fixture's first five seconds (tests/support/audio_samples.py), as Whisper tiny.en may hear them.
SPOKEN_AT_FIRST = {
    'voice',
    'recorder',
    'keep',
    'keeps',
    'every',
    'second',
    'what',
    'you',
    'say',
    'quick',
    'brown',
    'fox',
}
CHUNK = 64 * 1024  # the test settings' max_chunk_bytes
CREATED = '2024-05-01T09:30:00+00:00'
# type -> (declared mime type, ffmpeg output options, what is played, whether the original is kept apart)
TYPES: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    'mp3': ('audio/mpeg', ('-c:a', 'libmp3lame', '-b:a', '48k', '-f', 'mp3'), 'audio/mpeg', False),
    'mp3-without-id3': (
        'audio/mpeg',
        ('-c:a', 'libmp3lame', '-b:a', '48k', '-id3v2_version', '0', '-write_xing', '0', '-f', 'mp3'),
        'audio/mpeg',
        False,
    ),
    'wav': ('audio/x-wav', ('-c:a', 'pcm_s16le', '-f', 'wav'), 'audio/ogg', True),
    'flac': ('audio/flac', ('-c:a', 'flac', '-f', 'flac'), 'audio/flac', False),
    'm4a-index-at-end': ('audio/x-m4a', ('-c:a', 'aac', '-b:a', '64k', '-f', 'mp4'), 'audio/mp4', True),
    'm4a-index-in-front': (
        'audio/mp4',
        ('-c:a', 'aac', '-b:a', '64k', '-movflags', '+faststart', '-f', 'mp4'),
        'audio/mp4',
        True,
    ),
    'ogg-opus': ('audio/ogg', ('-c:a', 'libopus', '-b:a', '32k', '-f', 'ogg'), 'audio/ogg', False),
    'webm-opus': ('audio/webm', ('-c:a', 'libopus', '-b:a', '32k', '-f', 'webm'), 'audio/webm', True),
    'mp4-video': (
        'video/mp4',
        (
            '-c:v',
            'mpeg4',
            '-c:a',
            'aac',
            '-b:a',
            '64k',
            '-shortest',
            '-metadata',
            f'creation_time={CREATED}',
            '-f',
            'mp4',
        ),
        'audio/mp4',
        True,
    ),
}


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_executable(), '-v', 'error', '-y', *args], check=True, capture_output=True)


@pytest.fixture(scope='module')
def files(speech_5s: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp('imports')
    made = {}
    for name, (_mime, options, _played, _apart) in TYPES.items():
        target = folder / f'{name}.bin'
        video = ('-f', 'lavfi', '-i', 'color=c=black:s=64x64:r=5:d=5') if name == 'mp4-video' else ()
        ffmpeg(*video, '-i', str(speech_5s), *options, str(target))
        made[name] = target
    return made


def send(api: httpx.Client, auth: dict[str, str], mime: str, data: bytes, **fields: Any) -> tuple[str, list[Any]]:
    """Create an import of `data` and send its chunks until one is refused; returns its id and the answers."""
    body = {'mime_type': mime, 'title': 'My file', 'file_size_bytes': len(data), **fields}
    created = api.post('/api/recordings', json=body, headers=auth)
    assert created.status_code == 201, created.text
    rid = created.json()['id']
    answers = []
    for seq, piece in enumerate(split(data, CHUNK)):
        answers.append(api.put(f'/api/recordings/{rid}/chunks/{seq}', content=piece, headers=auth))
        if answers[-1].status_code != 200:  # a refusal ends the upload, as it does in the browser
            break
    return rid, answers


@SQLITE_LOCAL
@pytest.mark.parametrize('kind', list(TYPES))
def test_each_type_imports_plays_seeks_and_lasts_what_the_file_lasts(
    kind: str, files: dict[str, Path], api: httpx.Client, make_user: UserFactory, tmp_path: Path
) -> None:
    mime, _options, played, kept_apart = TYPES[kind]
    _user, auth = make_user.with_auth()
    data = files[kind].read_bytes()
    rid, answers = send(api, auth, mime, data, file_modified_at='2023-01-02T03:04:05Z')
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    ready = api.post(f'/api/recordings/{rid}/finalize', headers=auth)
    assert ready.status_code == 200, ready.text
    recording = ready.json()
    assert (recording['status'], recording['mime_type'], recording['title']) == ('ready', played, 'My file')
    assert abs(recording['duration_ms'] - 5000) <= 500, recording['duration_ms']
    expected_date = CREATED if kind == 'mp4-video' else '2023-01-02T03:04:05+00:00'
    assert recording['created_at'].replace('Z', '+00:00') == expected_date
    assert recording['original_mime_type'] == TYPES[kind][0].replace('x-wav', 'wav').replace('x-m4a', 'mp4')
    seek = fetch(api, recording['audio_url'], {'Range': 'bytes=100-199'})
    assert (seek.status_code, len(seek.content)) == (206, 100)
    whole = fetch(api, recording['audio_url'])
    assert whole.headers['content-type'].startswith(played)
    assert kept_apart or whole.content == data, 'played as it is'
    (tmp_path / 'played').write_bytes(whole.content)
    decoded_sha256(tmp_path / 'played')  # any decoder complaint fails
    original = api.get(f'/api/recordings/{rid}/original', headers=auth)
    assert (original.status_code, original.content) == (200, data)
    assert 'My%20file' in original.headers['content-disposition']


@SQLITE_LOCAL
def test_the_pages_download_of_an_import_is_the_file_as_it_came(
    files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services
) -> None:
    """The records page's "Download the original" is a signed link to the imported bytes, not the Opus copy."""
    user, auth = make_user.with_auth()
    data = files['wav'].read_bytes()
    rid, _answers = send(api, auth, 'audio/wav', data)
    assert api.post(f'/api/recordings/{rid}/finalize', headers=auth).status_code == 200
    recording = services.recordings.get(user_id=user.id, recording_id=uuid.UUID(rid))
    download = fetch(api, services.links.url(recording, download=True, kind='imported'))
    assert (download.status_code, download.headers['content-type'], download.content) == (200, 'audio/wav', data)
    assert '.wav' in download.headers['content-disposition']
    played = fetch(api, services.links.url(recording))
    assert played.headers['content-type'].startswith('audio/ogg') and played.content != data


@SQLITE_LOCAL
def test_every_type_imported_gets_a_transcript_of_its_words(
    files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services, transcriber: Transcriber
) -> None:
    """The transcript is made from what the app plays (the file, a stream copy or the Opus copy), for each type."""
    worker = in_process_worker(services, transcriber)
    user, auth = make_user.with_auth()
    imported = {}
    for kind, (mime, *_rest) in TYPES.items():
        rid, _answers = send(api, auth, mime, files[kind].read_bytes())
        assert api.post(f'/api/recordings/{rid}/finalize', headers=auth).status_code == 200
        imported[kind] = uuid.UUID(rid)
    while worker.work_once():
        pass
    for kind, rid in imported.items():
        transcript = services.transcripts.get(user_id=user.id, recording_id=rid)
        said = set(re.findall(r'[a-z]+', ' '.join(segment.text for segment in transcript.segments).lower()))
        assert len(SPOKEN_AT_FIRST & said) >= 4, (kind, transcript.state, said)


@pytest.mark.parametrize(('database_kind', 'storage_kind'), [('postgresql', 's3')], indirect=True)
def test_an_import_on_postgresql_and_s3_keeps_its_original_beside_its_opus_copy(
    files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services
) -> None:
    _user, auth = make_user.with_auth()
    data = files['wav'].read_bytes()
    rid, _answers = send(api, auth, 'audio/wav', data)
    recording = api.post(f'/api/recordings/{rid}/finalize', headers=auth).json()
    assert (recording['mime_type'], recording['original_bytes']) == ('audio/ogg', len(data))
    assert recording['size_bytes'] > len(data), 'the quota counts the original and the copy'
    keys = stored_keys(services.storage, f'recordings/{rid}/')
    assert keys == [f'recordings/{rid}/audio.ogg', f'recordings/{rid}/original.wav']
    assert fetch(api, recording['audio_url'], {'Range': 'bytes=0-9'}).status_code == 206


def refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert words in answer.json()['error'], answer.json()


@SQLITE_LOCAL
def test_refused_at_the_door(
    files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services
) -> None:
    _user, auth = make_user.with_auth()
    playlist = b'#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n'
    rid, (answer,) = send(api, auth, 'audio/mpeg', playlist)
    refused(answer, 422, 'playlist')
    wav_as_flac, answers = send(api, auth, 'audio/flac', files['wav'].read_bytes())
    refused(answers[0], 422, 'not FLAC audio')
    for recording_id in (rid, wav_as_flac):  # nothing of them was stored
        assert stored_keys(services.storage, f'recordings/{recording_id}/') == []
    too_big = {'mime_type': 'audio/mpeg', 'file_size_bytes': 3 * 2**30}
    refused(api.post('/api/recordings', json=too_big, headers=auth), 413, 'at most 2147 MB can be imported')
    empty = {'mime_type': 'audio/mpeg', 'file_size_bytes': 0}
    refused(api.post('/api/recordings', json=empty, headers=auth), 422, 'the file is empty')
    renamed = {'mime_type': 'application/x-mpegurl', 'file_size_bytes': 100}
    refused(api.post('/api/recordings', json=renamed, headers=auth), 422, 'unsupported audio type')
    for _going in range(3):  # imports holding chunks; the ones refused above hold none and do not count
        send(api, auth, 'audio/mpeg', files['mp3'].read_bytes())
    going = {'mime_type': 'audio/mpeg', 'file_size_bytes': 100}
    refused(api.post('/api/recordings', json=going, headers=auth), 403, 'you have 3 imports going')


@SQLITE_LOCAL
@pytest.mark.parametrize('broken', ['wav-header-on-garbage', 'truncated-m4a'])
def test_a_broken_file_is_refused_at_finalize_and_leaves_nothing(
    broken: str, files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services
) -> None:
    _user, auth = make_user.with_auth()
    if broken == 'wav-header-on-garbage':
        mime, data = 'audio/wav', files['wav'].read_bytes()[:44] + uuid.uuid4().bytes * 4000
    else:
        whole = files['m4a-index-at-end'].read_bytes()
        mime, data = 'audio/mp4', whole[: len(whole) // 2]
    rid, answers = send(api, auth, mime, data)
    assert all(answer.status_code == 200 for answer in answers)
    answer = api.post(f'/api/recordings/{rid}/finalize', headers=auth)
    refused(answer, 422, 'cannot be imported' if broken == 'truncated-m4a' else 'import')
    assert api.get(f'/api/recordings/{rid}', headers=auth).status_code == 404
    assert stored_keys(services.storage, f'recordings/{rid}/') == []


@SQLITE_LOCAL
def test_an_interrupted_import_is_not_finished_and_resumes_where_it_stopped(
    files: dict[str, Path], api: httpx.Client, make_user: UserFactory, services: Services
) -> None:
    _user, auth = make_user.with_auth()
    data = files['flac'].read_bytes()
    pieces = split(data, CHUNK)
    body = {'mime_type': 'audio/flac', 'file_size_bytes': len(data), 'title': 'Interview'}
    rid = api.post('/api/recordings', json=body, headers=auth).json()['id']
    api.put(f'/api/recordings/{rid}/chunks/0', content=pieces[0], headers=auth)
    refused(api.post(f'/api/recordings/{rid}/finalize', headers=auth), 409, 'choose the same file again')
    stale = services.sweeper  # the sweeper finding it idle does not finish it either
    stale.idle_after = stale.idle_after * 0
    stale.sweep()
    after_sweep = api.get(f'/api/recordings/{rid}', headers=auth).json()
    assert (after_sweep['status'], after_sweep['error']) == ('failed', after_sweep['error'])
    assert 'interrupted' in after_sweep['error']
    for seq, piece in enumerate(pieces):  # the resumed upload: the first chunk again is a no-op
        assert api.put(f'/api/recordings/{rid}/chunks/{seq}', content=piece, headers=auth).status_code == 200
    ready = api.post(f'/api/recordings/{rid}/finalize', headers=auth).json()
    assert (ready['status'], ready['size_bytes']) == ('ready', len(data))
