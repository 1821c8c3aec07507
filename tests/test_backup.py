"""`python main.py backup DEST` and `restore SRC`: a snapshot taken while people record restores into a fresh data
folder where every finished recording plays with its transcript; failures say one plain line and leave nothing that
looks whole. On PostgreSQL, the deploy guide's pg_dump recipe restores the database half."""

import errno
import logging
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import services.backup.snapshot as snapshot
from commands import run_command
from services.container import Services, build_services
from services.core.config import Settings
from services.recordings.service import recording_audio_key
from services.transcripts.engine import Segment, Word
from services.transcripts.shapes import encode
from tests.conftest import record
from tests.support.app_server import AppServer
from tests.support.audio_samples import split
from tests.support.postgres_server import PostgresServer
from web import install_api

SPOKEN = 'every finished recording comes back with its words'


def embedded(data_dir: Path, **options: object) -> Settings:
    """The embedded layout with its generated secret (secret.key in the data folder), as `make run` starts it."""
    return Settings(_env_file=None, data_dir=data_dir, max_chunk_bytes=64 * 1024, **options)  # type: ignore[arg-type]


@pytest.fixture
def original(tmp_path: Path) -> Iterator[Services]:
    built = build_services(embedded(tmp_path / 'data'))
    yield built
    built.close()


def finished_with_transcript(services: Services, user_id: uuid.UUID, audio: bytes, title: str) -> uuid.UUID:
    """A recording finalized as the browser's chunks make one, its transcript stored as a worker stores it."""
    recording = record(services, user_id, audio, title=title)
    assert services.transcripts.queue is not None
    job = services.transcripts.queue.claim()
    assert job is not None and job.recording_id == recording.id
    spoken = tuple(Word(i * 400, i * 400 + 300, word) for i, word in enumerate(f'{title} {SPOKEN}'.split()))
    text, segments = encode([Segment(0, spoken[-1].end_ms, spoken)], spoken[-1].end_ms)
    assert services.transcripts.queue.complete(job, text=text, segments=segments, language='en')
    return recording.id


def audio_key_of(services: Services, user_id: uuid.UUID, recording_id: uuid.UUID) -> str:
    return recording_audio_key(services.recordings.get(user_id=user_id, recording_id=recording_id))


def backup_or_restore(settings: Settings, *args: str) -> None:
    run_command(settings, list(args))


def test_a_backup_taken_while_people_record_restores_and_plays_everything(
    original: Services, tmp_path: Path, webm_5s: bytes
) -> None:
    user, token = original.users.onboard(name='Backed Up')
    auth = {'Authorization': f'Bearer {token}'}
    finished = [finished_with_transcript(original, user.id, webm_5s, title) for title in ('Monday', 'Tuesday')]
    app = FastAPI()
    install_api(app, original)
    with TestClient(app) as api:
        open_id = api.post('/api/recordings', json={'mime_type': 'audio/webm;codecs=opus'}, headers=auth).json()['id']
        pieces = split(webm_5s, 400)
        acked: list[int] = []
        some_arrived = threading.Event()

        def keep_recording() -> None:  # a browser sending its chunks through the API all along
            for seq, piece in enumerate(pieces):
                answer = api.put(f'/api/recordings/{open_id}/chunks/{seq}', content=piece, headers=auth)
                assert answer.status_code == 200, answer.text
                acked.append(seq)
                if seq == 5:
                    some_arrived.set()

        recorder = threading.Thread(target=keep_recording)
        recorder.start()
        assert some_arrived.wait(30)
        backup_or_restore(original.settings, 'backup', str(tmp_path / 'backup'))
        during = len(acked)
        recorder.join(60)
    print(f'{during} of {len(pieces)} chunks had arrived when the backup was done')
    stored = original.settings.local_storage_dir
    expected = {rid: (stored / audio_key_of(original, user.id, rid)).read_bytes() for rid in finished}
    assert not [name for name in tmp_path.iterdir() if name.name.startswith('.')], 'no partial folder is left'

    restored_dir = tmp_path / 'restored'
    backup_or_restore(embedded(restored_dir), 'restore', str(tmp_path / 'backup'))
    assert (restored_dir / 'secret.key').read_text() == (original.settings.data_dir / 'secret.key').read_text()
    # The restored secret.key, not the test's; transcripts on, with no worker to make new ones meanwhile.
    env = {'VR_SECRET': '', 'VR_TRANSCRIBE': 'true', 'VR_TRANSCRIBE_WORKER': 'external'}
    server = AppServer(restored_dir, env=env).start()
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as client:
            answer = client.get(f'/api/records/{user.id}')
            assert answer.status_code == 200, answer.text
            listed = {r['id']: r for r in answer.json()}
            for rid, audio in expected.items():
                assert listed[str(rid)]['status'] == 'ready'
                assert client.get(f'/api/recordings/{rid}/audio').content == audio
                transcript = client.get(f'/api/recordings/{rid}/transcript', params={'format': 'txt'}).text
                assert SPOKEN in transcript and listed[str(rid)]['title'] in transcript
            assert listed[open_id]['status'] == 'recording'  # still open when the snapshot was taken
            saved = client.post(f'/api/recordings/{open_id}/finalize')  # every chunk the snapshot names is there
            assert saved.status_code == 200 and saved.json()['status'] == 'ready', saved.text
    finally:
        server.stop()
    server.assert_clean_log()


def test_a_recording_finished_between_the_database_and_the_audio_copy_is_backed_up_finished(
    original: Services,
    tmp_path: Path,
    webm_5s: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Finalize deletes the chunks the copied database still names: the backup sees it and takes the snapshot again."""
    user = original.users.onboard(name='Stops now')[0]
    recording = original.recordings.create(user_id=user.id, mime_type='audio/webm;codecs=opus', title='Stopped')
    for seq, piece in enumerate(split(webm_5s, 16_500)):
        original.chunks.add_chunk(user_id=user.id, recording_id=recording.id, seq=seq, data=piece)
    copy_audio = snapshot._copy_audio
    finished: list[bytes] = []

    def stop_pressed_meanwhile(source: Path, target: Path) -> dict[str, object]:
        if not finished:  # the user presses Stop just after the database was copied
            done = original.finalizer.finalize(user_id=user.id, recording_id=recording.id)
            finished.append((source / recording_audio_key(done)).read_bytes())
        return copy_audio(source, target)  # type: ignore[return-value]

    monkeypatch.setattr(snapshot, '_copy_audio', stop_pressed_meanwhile)
    with caplog.at_level(logging.INFO):
        backup_or_restore(original.settings, 'backup', str(tmp_path / 'backup'))
    assert any('taking it again' in r.getMessage() for r in caplog.records)
    restored = embedded(tmp_path / 'restored')
    backup_or_restore(restored, 'restore', str(tmp_path / 'backup'))
    back = build_services(restored)
    try:
        saved = back.recordings.get(user_id=user.id, recording_id=recording.id)
        assert saved.status == 'ready'
        assert (restored.local_storage_dir / recording_audio_key(saved)).read_bytes() == finished[0]
    finally:
        back.close()


@pytest.mark.parametrize('fault', ['not writable', 'out of space'])
def test_a_backup_that_cannot_be_written_says_one_plain_line_and_leaves_nothing(
    original: Services,
    tmp_path: Path,
    webm_5s: bytes,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record(original, original.users.onboard(name='Full disk')[0].id, webm_5s)
    target = tmp_path / 'backups'
    target.mkdir()
    copies = 0
    real_copy = snapshot.copy_checked

    def failing_copy(*args: object, **kwargs: object) -> object:  # the disk fails after some files were written
        nonlocal copies
        copies += 1
        if fault == 'not writable':
            raise PermissionError(errno.EACCES, 'Permission denied')
        if copies > 2:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_copy(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot, 'copy_checked', failing_copy)
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as exited:
        backup_or_restore(original.settings, 'backup', str(target / 'tonight'))
    assert exited.value.code == 1
    (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    said = 'is not writable' if fault == 'not writable' else 'not enough space at'
    assert line.startswith('backup failed: backup not written: ') and said in line, line
    assert list(target.iterdir()) == [], 'no backup, whole or half'


def test_restore_refuses_a_folder_in_use_and_a_damaged_backup(
    original: Services, tmp_path: Path, webm_5s: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    recording = record(original, original.users.onboard(name='Careful')[0].id, webm_5s)
    backup = tmp_path / 'backup'
    backup_or_restore(original.settings, 'backup', str(backup))

    def refused(data_dir: Path, source: Path) -> str:
        caplog.clear()
        with pytest.raises(SystemExit) as exited:
            backup_or_restore(embedded(data_dir), 'restore', str(source))
        assert exited.value.code == 1
        (line,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        return line

    assert 'is not empty' in refused(original.settings.data_dir, backup)
    assert (original.settings.data_dir / 'voice-recorder.db').exists()

    damaged = tmp_path / 'damaged'
    shutil.copytree(backup, damaged)
    audio = damaged / 'audio' / recording_audio_key(recording)
    audio.write_bytes(audio.read_bytes()[:-1] + b'\0')
    fresh = tmp_path / 'fresh'
    assert 'does not match its checksum' in refused(fresh, damaged)
    assert list(fresh.iterdir()) == [], 'the data folder is left empty'

    (damaged / 'manifest.json').unlink()  # what a backup interrupted before its end would look like
    assert 'is not a whole backup' in refused(fresh, damaged)
    assert list(fresh.iterdir()) == []


def test_the_deploy_guides_pg_dump_recipe_restores_the_database(
    postgres: PostgresServer, tmp_path: Path, webm_5s: bytes
) -> None:
    """The commands docs/deploy.md gives, run against a real PostgreSQL: a new database restored from the dump has
    the recordings and their transcripts."""
    source_name, restored_name = postgres.create_database(), postgres.create_database()
    libpq = f'postgresql://postgres@127.0.0.1:{postgres.port}'
    dump = tmp_path / 'voice-recorder.dump'
    try:
        source = build_services(embedded(tmp_path / 'data', database_url=postgres.url(source_name)))
        user, _token = source.users.onboard(name='Managed')
        rid = finished_with_transcript(source, user.id, webm_5s, 'Hosted')
        source.close()
        pg = postgres.bin
        subprocess.run([pg / 'pg_dump', '--format=custom', f'--file={dump}', f'{libpq}/{source_name}'], check=True)
        restore = [pg / 'pg_restore', '--no-owner', '--no-privileges', f'--dbname={libpq}/{restored_name}', dump]
        subprocess.run(restore, check=True)
        restored = build_services(embedded(tmp_path / 'data', database_url=postgres.url(restored_name)))
        try:
            assert restored.recordings.get(user_id=user.id, recording_id=rid).status == 'ready'
            words = restored.transcripts.file(user_id=user.id, recording_id=rid, kind='txt').content
            assert SPOKEN in words
            assert [hit.recording.id for hit in restored.transcripts.search(user_id=user.id, query='finished')] == [rid]
        finally:
            restored.close()
    finally:
        postgres.drop_database(source_name)
        postgres.drop_database(restored_name)
