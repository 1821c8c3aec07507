"""`python main.py backup DEST`: a consistent snapshot of a running app's embedded layout.

The database is copied first, with SQLite's online backup API (one read transaction: a consistent state while
recordings go on), then the audio folder. Audio is always on disk before the database names it, so every file
the copied database names is there when the folder is copied, unless it was removed in between (a recording
finalized or deleted meanwhile): that is checked, and the snapshot taken again. What arrived since is harmless.
Everything goes into a hidden folder beside DEST that is renamed to DEST only once complete, manifest last, so a
failed backup never looks whole.
"""

import errno
import io
import logging
import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from services.backup.consistency import missing_files
from services.backup.manifest import (
    AUDIO_FOLDER,
    DATABASE_FILE,
    MANIFEST_NAME,
    SECRET_FILE,
    BackupFailed,
    FileEntry,
    Manifest,
    checksum,
    copy_checked,
    plain_os_error,
    sync_folder,
    sync_tree,
)
from services.core.config import Settings
from services.core.version import app_version

GUIDE = 'docs/deploy.md, "Backups"'
SNAPSHOT_ATTEMPTS = 3
log = logging.getLogger(__name__)


def embedded_database(settings: Settings) -> Path:
    """The SQLite file, or a plain refusal for the layouts whose data lives elsewhere."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != 'sqlite' or not url.database:
        raise BackupFailed(f'the database is {url.get_backend_name()}, not the embedded SQLite file: see {GUIDE}')
    if settings.storage != 'local':
        raise BackupFailed(f'the audio is in S3, not in the data folder: see {GUIDE}')
    return Path(url.database)


def write_backup(settings: Settings, destination: Path) -> Manifest:
    """Write the backup to the new folder `destination`; on any failure nothing is left but the reason."""
    database = embedded_database(settings)
    if not database.exists():
        raise BackupFailed(f'there is no database at {database}: nothing to back up')
    if destination.exists():
        raise BackupFailed(f'{destination} already exists: name a new folder for the backup')
    partial = destination.with_name(f'.{destination.name}.partial-{os.getpid()}')
    try:
        partial.mkdir(parents=True, mode=0o700)  # it holds the secret and every user's data
        manifest = _fill(settings, database, partial)
        _write_manifest(partial, manifest)
        partial.rename(destination)
        sync_folder(destination.parent)
        return manifest
    except OSError as error:
        raise BackupFailed(f'backup not written: {plain_os_error(error, destination.parent)}') from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # gone after the rename; a failure's leftovers otherwise


def _fill(settings: Settings, database: Path, folder: Path) -> Manifest:
    """Database, then audio; again if a file the copied database names was removed in between (a recording finished
    or deleted meanwhile): a retaken snapshot is of the state after that change."""
    for _attempt in range(SNAPSHOT_ATTEMPTS):
        manifest = Manifest(created_at=datetime.now(UTC).isoformat(timespec='seconds'), app_version=app_version())
        manifest.files[DATABASE_FILE] = _copy_database(database, folder / DATABASE_FILE)
        manifest.files.update(_copy_audio(settings.local_storage_dir, folder / AUDIO_FOLDER))
        missing = missing_files(folder / DATABASE_FILE, folder / AUDIO_FOLDER)
        if not missing:
            secret = io.BytesIO(settings.resolved_secret().encode())  # the generated one, or VR_SECRET: sessions hold
            manifest.files[SECRET_FILE] = copy_checked(secret, folder / SECRET_FILE, mode=0o600)
            return manifest
        log.info('%d files changed while the backup was taken (e.g. %s); taking it again', len(missing), missing[0])
        (folder / DATABASE_FILE).unlink()
        shutil.rmtree(folder / AUDIO_FOLDER, ignore_errors=True)
    raise BackupFailed('recordings kept changing while the backup was taken; try again')


def _copy_database(source: Path, target: Path) -> FileEntry:
    """SQLite's online backup in one step: it reads one snapshot (WAL: writers go on meanwhile), never a torn file."""
    origin = sqlite3.connect(f'file:{source}?mode=ro', uri=True, timeout=30)
    copy = sqlite3.connect(target)
    try:
        origin.backup(copy)
        if copy.execute('PRAGMA quick_check').fetchone() != ('ok',):
            raise BackupFailed('the copied database did not pass its check; try again')
    except sqlite3.Error as error:
        if 'full' in str(error):  # SQLITE_FULL: the destination's disk
            raise OSError(errno.ENOSPC, str(error)) from None
        raise BackupFailed(f'the database could not be read: {error}') from None
    finally:
        copy.close()
        origin.close()
    target.chmod(0o600)
    with target.open('rb+') as written:
        os.fsync(written.fileno())
    return checksum(target)


def _copy_audio(source: Path, target: Path) -> dict[str, FileEntry]:
    """Every stored object, skipping the storage's half-written temp files and what was deleted meanwhile."""
    copied: dict[str, FileEntry] = {}
    if not source.is_dir():
        return copied
    for folder, _subfolders, names in os.walk(source):
        for name in sorted(names):
            if name.startswith('.tmp-'):
                continue
            path = Path(folder, name)
            relative = path.relative_to(source)
            try:
                with path.open('rb') as original:
                    entry = copy_checked(original, target / relative)
            except FileNotFoundError:  # a recording deleted (or its chunks finalized away) since the database copy
                continue
            copied[f'{AUDIO_FOLDER}/{relative.as_posix()}'] = entry
    sync_tree(target)  # the copies' names on disk too, not only their bytes
    return copied


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    """Last: a backup folder is whole once this is there."""
    copy_checked(io.BytesIO(manifest.to_json().encode()), folder / MANIFEST_NAME)
    sync_folder(folder)
