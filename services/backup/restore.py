"""`python main.py restore SRC`: fills an empty data folder from a backup, after checking every file against the
backup's manifest. The files are copied (and checked as they are read) into a hidden folder inside the data folder
(so a mounted volume works too), and moved into place only once all are there and match, the database last: a
failed restore leaves the data folder empty.
"""

import os
import shutil
from pathlib import Path, PurePosixPath

from services.backup.manifest import (
    DATABASE_FILE,
    MANIFEST_NAME,
    SECRET_FILE,
    BackupFailed,
    FileEntry,
    Manifest,
    copy_checked,
    plain_os_error,
    sync_folder,
    sync_tree,
)
from services.backup.snapshot import embedded_database
from services.core.config import Settings


def restore_backup(settings: Settings, source: Path) -> Manifest:
    """Restore `source` into the settings' data folder, which must be empty or missing."""
    embedded_database(settings)  # the embedded layout only: PostgreSQL and S3 restore with their own tools
    data_dir = settings.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupFailed(f'the data folder {data_dir} is not empty: restore only into an empty one')
    manifest = Manifest.read(source)
    for name in manifest.files:
        _inside(name)
    staging = data_dir / f'.restoring-{os.getpid()}'
    try:
        staging.mkdir(parents=True)
        for name, expected in manifest.files.items():
            _restore_file(source, name, expected, staging)
        sync_tree(staging)
        for entry in sorted(staging.iterdir(), key=lambda path: path.name == DATABASE_FILE):  # the database last
            entry.rename(data_dir / entry.name)
        staging.rmdir()
        sync_folder(data_dir)
        return manifest
    except OSError as error:
        raise BackupFailed(f'nothing restored: {plain_os_error(error, data_dir)}') from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _inside(name: str) -> PurePosixPath:
    """A manifest names files inside the backup only: no absolute paths, no way up."""
    path = PurePosixPath(name)
    if path.is_absolute() or '..' in path.parts or name == MANIFEST_NAME:
        raise BackupFailed(f'the backup names a file outside itself ({name}): nothing restored')
    return path


def _restore_file(source: Path, name: str, expected: FileEntry, staging: Path) -> None:
    mode = 0o600 if name == SECRET_FILE or name.endswith('.db') else 0o644
    try:
        with (source / name).open('rb') as original:
            copied = copy_checked(original, staging / name, mode=mode)
    except FileNotFoundError:
        raise BackupFailed(f'the backup at {source} is incomplete: {name} is missing; nothing restored') from None
    if copied != expected:
        raise BackupFailed(f'the backup at {source} is damaged: {name} does not match its checksum; nothing restored')
