"""The storage contract on the local folder, on S3 and on S3 behind the chunk spool; S3's own duties."""

import io
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from services.container import build_services
from services.core.config import Settings
from services.core.errors import NotFound, ServiceUnavailable
from services.recordings.download_names import content_disposition, download_name
from services.storage import local as local_storage
from services.storage.local import LocalStorage
from services.storage.ordered_fetch import copy_in_order
from services.storage.protocol import Storage
from services.storage.s3 import S3Storage
from services.storage.spool import SpooledStorage
from tests.conftest import UserFactory, record, s3_of, stored_keys
from tests.support.s3_server import REGION

S3_ONLY = pytest.mark.parametrize('storage_kind', ['s3'], indirect=True)
BARE_S3 = pytest.mark.parametrize('storage', ['s3'], indirect=True)


def read_all(storage: Storage, key: str) -> bytes:
    buffer = io.BytesIO()
    storage.copy_to(key, buffer)
    return buffer.getvalue()


def test_objects_round_trip_with_ranges_sizes_and_prefix_deletes(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000  # ~1 MB: several read blocks
    storage.put_bytes('recordings/a/chunks/0', data)
    source = tmp_path / 'audio.webm'
    source.write_bytes(data[::-1])
    storage.put_file('recordings/a/audio.webm', source)
    storage.put_bytes('recordings/b/chunks/0', b'keep me')
    assert read_all(storage, 'recordings/a/chunks/0') == data
    assert read_all(storage, 'recordings/a/audio.webm') == data[::-1]
    assert storage.size('recordings/a/chunks/0') == len(data)
    assert b''.join(storage.iter_range('recordings/a/chunks/0', 1000, 400_000)) == data[1000:400_001]
    assert storage.exists('recordings/a/chunks/0')
    assert not storage.exists('recordings/a/chunks/1')
    with pytest.raises(NotFound):
        storage.size('recordings/a/chunks/1')
    with pytest.raises(NotFound):
        read_all(storage, 'recordings/a/chunks/1')
    assert storage.delete_prefix('recordings/a/') == 2
    assert stored_keys(storage, 'recordings/') == ['recordings/b/chunks/0']
    storage.check()


def test_one_key_can_be_deleted_and_children_are_listed_in_pages(storage: Storage) -> None:
    """What the chunk path (a refused chunk's own object) and the orphan sweep (recordings by id) rely on."""
    for name in ('r3', 'r1', 'r2'):
        storage.put_bytes(f'recordings/{name}/chunks/0.aaaa', b'a')
        storage.put_bytes(f'recordings/{name}/chunks/0.bbbb', b'b')
    assert storage.delete_prefix('recordings/r1/chunks/0.aaaa') == 1
    assert stored_keys(storage, 'recordings/r1/') == ['recordings/r1/chunks/0.bbbb']
    assert storage.list_children('recordings/') == ['r1', 'r2', 'r3']
    assert storage.list_children('recordings/', limit=2) == ['r1', 'r2']
    assert storage.list_children('recordings/', after='r2') == ['r3']
    assert storage.list_children('recordings/r2/chunks/') == ['0.aaaa', '0.bbbb']
    assert storage.list_children('nothing/') == []


def test_many_objects_stored_at_once_are_each_whole_and_a_resent_one_replaces_its_copy(storage: Storage) -> None:
    """The chunk path stores a batch with one `put_many`: new recordings' folders, and a chunk sent again."""
    storage.put_bytes('recordings/old/chunks/3.aaaa', b'x' * 10)
    batch = {f'recordings/r{i}/chunks/{i}.{i:04d}': os.urandom(1000 + i) for i in range(30)}
    batch['recordings/old/chunks/3.aaaa'] = b'y' * 10
    storage.put_many(batch)
    for key, data in batch.items():
        assert read_all(storage, key) == data
    assert len(stored_keys(storage, 'recordings/')) == 31


def test_a_folder_removed_while_its_batch_is_written_still_ends_with_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finalize or delete may remove a recording's folder between the batch's write and its rename: that one
    object is written again alone, and the rest of the batch is not refused for it."""
    storage = LocalStorage(tmp_path / 'audio')
    real_syncfs = local_storage._syncfs
    assert real_syncfs is not None, 'this machine runs Linux, so batches use syncfs'
    removed: list[Path] = []

    def sync_then_remove(folder: Path) -> None:
        real_syncfs(folder)
        if not removed:  # after the first sync, before the renames
            removed.append(tmp_path / 'audio' / 'recordings' / 'gone')
            shutil.rmtree(removed[0])

    monkeypatch.setattr(local_storage, '_syncfs', sync_then_remove)
    storage.put_many({'recordings/gone/chunks/1.ab': b'late', 'recordings/kept/chunks/1.cd': b'fine'})
    assert read_all(storage, 'recordings/gone/chunks/1.ab') == b'late'
    assert read_all(storage, 'recordings/kept/chunks/1.cd') == b'fine'
    assert sorted(p.name for p in (tmp_path / 'audio').rglob('.tmp-*')) == []


def test_a_failed_filesystem_sync_refuses_the_batch_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = LocalStorage(tmp_path / 'audio')

    def broken(_folder: Path) -> None:
        raise OSError(5, 'Input/output error')

    monkeypatch.setattr(local_storage, '_syncfs', broken)
    with pytest.raises(ServiceUnavailable):
        storage.put_many({'recordings/a/chunks/1.ab': b'one', 'recordings/b/chunks/1.cd': b'two'})
    assert [p.name for p in (tmp_path / 'audio').rglob('*') if p.is_file()] == []


def test_without_syncfs_a_batch_is_stored_one_object_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / 'audio')
    monkeypatch.setattr(local_storage, '_syncfs', None)
    storage.put_many({'recordings/a/chunks/1.ab': b'one', 'recordings/b/chunks/1.cd': b'two'})
    assert read_all(storage, 'recordings/a/chunks/1.ab') == b'one'
    assert read_all(storage, 'recordings/b/chunks/1.cd') == b'two'


@pytest.mark.parametrize('workers', [1, 8])
def test_chunks_are_joined_in_order_with_bounded_read_ahead(storage: Storage, workers: int) -> None:
    pieces = [uuid.uuid4().bytes * (1 + seq % 37) for seq in range(120)]
    keys = [f'recordings/r/chunks/{seq}' for seq in range(len(pieces))]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(storage.put_bytes, keys, pieces))
    started = 0
    lock = threading.Lock()
    copy_to = storage.copy_to

    def counting_copy_to(key: str, target: Any) -> int:
        nonlocal started
        with lock:
            started += 1
        return copy_to(key, target)

    class Target(io.BytesIO):
        ahead: list[int] = []

        def write(self, data: Any) -> int:
            self.ahead.append(started - len(self.ahead))  # reads begun but not yet written, this write included
            return super().write(data)

    target = Target()
    storage.copy_to = counting_copy_to  # type: ignore[method-assign]
    assert copy_in_order(storage, keys, target, workers=workers) == sum(map(len, pieces))
    assert target.getvalue() == b''.join(pieces)
    if workers > 1:
        assert max(Target.ahead) <= 2 * workers


@pytest.mark.parametrize('storage', ['s3-spooled'], indirect=True)
def test_the_spool_serves_chunks_this_instance_took_and_falls_back_to_s3(storage: Storage, tmp_path: Path) -> None:
    assert isinstance(storage, SpooledStorage)
    for seq in range(3):
        storage.put_bytes(f'recordings/r/chunks/{seq}', f'chunk {seq}'.encode())
    s3_of(storage).delete_prefix('recordings/r/chunks/1')  # only the spool still has chunk 1 ...
    (storage.folder / 'recordings/r/chunks/2').unlink()  # ... and only S3 chunk 2
    keys = [f'recordings/r/chunks/{seq}' for seq in range(3)]
    assert read_all(storage, keys[1]) == b'chunk 1'
    assert read_all(storage, keys[2]) == b'chunk 2'
    assert storage.delete_prefix('recordings/r/') == 2
    assert not (storage.folder / 'recordings/r').exists()
    storage.put_bytes('recordings/s/chunks/0', b'left behind by a crash')
    restarted = SpooledStorage(s3_of(storage), storage.folder)
    assert not (restarted.folder / 'recordings').exists(), 'a restart starts with an empty spool'
    assert read_all(restarted, 'recordings/s/chunks/0') == b'left behind by a crash'


@pytest.mark.parametrize('storage', ['s3-spooled'], indirect=True)
def test_the_spool_forgets_recordings_abandoned_for_a_day(storage: Storage) -> None:
    assert isinstance(storage, SpooledStorage)
    storage.put_bytes('recordings/old/chunks/0', b'x')
    storage.put_bytes('recordings/new/chunks/0', b'y')
    a_day_ago = time.time() - 24 * 3600 - 60
    os.utime(storage.folder / 'recordings/old/chunks', (a_day_ago, a_day_ago))
    storage.sweep()
    assert sorted(p.name for p in (storage.folder / 'recordings').iterdir()) == ['new']
    assert read_all(storage, 'recordings/old/chunks/0') == b'x'  # still in S3


def test_a_missing_chunk_fails_the_join_instead_of_leaving_a_hole(storage: Storage) -> None:
    for seq in (0, 1, 3):
        storage.put_bytes(f'recordings/r/chunks/{seq}', b'x')
    keys = [f'recordings/r/chunks/{seq}' for seq in range(4)]
    with pytest.raises(NotFound):
        copy_in_order(storage, keys, io.BytesIO(), workers=4)


@BARE_S3
def test_chunk_objects_carry_the_tag_a_lifecycle_rule_expires(storage: Storage, tmp_path: Path) -> None:
    assert isinstance(storage, S3Storage)
    storage.put_bytes('recordings/r/chunks/0', b'chunk')
    final = tmp_path / 'audio.webm'
    final.write_bytes(b'final')
    storage.put_file('recordings/r/audio.webm', final)

    def tags(key: str) -> list[dict[str, str]]:
        return list(storage.client.get_object_tagging(Bucket=storage.bucket, Key=key)['TagSet'])

    assert tags('recordings/r/chunks/0') == [{'Key': 'vr-kind', 'Value': 'chunk'}]
    assert tags('recordings/r/audio.webm') == []


@BARE_S3
def test_delete_prefix_pages_through_listings_and_batches_deletes(storage: Storage) -> None:
    assert isinstance(storage, S3Storage)
    keys = [f'recordings/long/chunks/{seq}' for seq in range(1_050)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: storage.put_bytes(key, b'.'), keys))
    storage.put_bytes('recordings/longer/chunks/0', b'a sibling whose name starts the same')
    calls: dict[str, int] = {'ListObjectsV2': 0, 'DeleteObjects': 0}

    def count(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    storage.client.meta.events.register('before-call.s3', count)
    assert storage.delete_prefix('recordings/long/') == 1_050
    assert calls['ListObjectsV2'] >= 2 and calls['DeleteObjects'] >= 2  # one page and one batch hold 1,000 keys
    assert stored_keys(storage, 'recordings/') == ['recordings/longer/chunks/0']


@S3_ONLY
def test_s3_audio_urls_are_presigned_gets_with_type_disposition_and_expiry(
    storage_settings: dict[str, Any], tmp_path: Path, webm_5s: bytes
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / 'data', audio_url_expiry_s=900, **storage_settings)
    services = build_services(settings)
    try:
        ready = record(services, UserFactory(services)('Ada').id, webm_5s)
        before = time.time()
        play, download = services.links.url(ready), services.links.url(ready, download=True)
    finally:
        services.close()
    url = urlparse(play)
    query = parse_qs(url.query)
    assert f'{url.scheme}://{url.netloc}' == settings.s3_endpoint_url
    assert url.path == f'/{settings.s3_bucket}/recordings/{ready.id}/audio.webm'
    assert query['X-Amz-Algorithm'] == ['AWS4-HMAC-SHA256']
    assert query['X-Amz-Credential'][0].endswith(f'/{REGION}/s3/aws4_request')
    assert query['X-Amz-Expires'] == ['900']
    signed_at = time.mktime(time.strptime(query['X-Amz-Date'][0], '%Y%m%dT%H%M%SZ')) - time.timezone
    assert signed_at == pytest.approx(before, abs=5)
    assert query['response-content-type'] == ['audio/webm']
    assert 'response-content-disposition' not in query
    download_query = parse_qs(urlparse(download).query)
    assert download_query['response-content-disposition'] == [content_disposition(download_name(ready))]
    response = httpx.get(play, headers={'Range': 'bytes=0-99'})
    assert (response.status_code, len(response.content)) == (206, 100)


@S3_ONLY
def test_presigned_urls_name_the_endpoint_browsers_reach(storage_settings: dict[str, Any]) -> None:
    """Inside compose the app reaches http://minio:9000, a browser only the published address."""
    storage = S3Storage(
        bucket=storage_settings['s3_bucket'],
        region=REGION,
        endpoint_url=storage_settings['s3_endpoint_url'],
        public_endpoint_url='https://media.example.org',
        path_style=True,
    )
    url = storage.direct_url('recordings/x/audio.webm', content_type='audio/webm')
    storage.close()
    assert url.startswith(f'https://media.example.org/{storage_settings["s3_bucket"]}/recordings/x/audio.webm?')
