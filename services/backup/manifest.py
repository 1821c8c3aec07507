"""What a backup holds and how it proves it: every file with its size and SHA-256, in `manifest.json`, written last.

A backup folder is complete exactly when its manifest is there, and every file the manifest names matches it: the
restore checks each one before anything lands in the data folder.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from services.core.errors import AppError

MANIFEST_NAME = 'manifest.json'
FORMAT = 1
DATABASE_FILE = 'voice-recorder.db'  # the name the data folder gives it (Settings.resolved_database_url)
SECRET_FILE = 'secret.key'
AUDIO_FOLDER = 'audio'
COPY_BLOCK = 1024 * 1024


class BackupFailed(AppError):
    """A backup or restore that did not happen; its message is the one plain line the command prints."""

    status_code = 500


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass
class Manifest:
    created_at: str
    app_version: str
    files: dict[str, FileEntry] = field(default_factory=dict)  # path inside the backup, with '/' -> its check

    def to_json(self) -> str:
        files = {name: {'size': entry.size, 'sha256': entry.sha256} for name, entry in sorted(self.files.items())}
        body = {'format': FORMAT, 'created_at': self.created_at, 'app_version': self.app_version, 'files': files}
        return json.dumps(body, indent=1)

    @classmethod
    def read(cls, folder: Path) -> 'Manifest':
        """The manifest of the backup in `folder`; a folder without a readable one is not a backup."""
        try:
            body: dict[str, Any] = json.loads((folder / MANIFEST_NAME).read_text())
            files = {str(name): FileEntry(int(e['size']), str(e['sha256'])) for name, e in body['files'].items()}
            if body.get('format') != FORMAT:
                raise BackupFailed(f'{folder} was written by a newer version (format {body.get("format")})')
            return cls(str(body['created_at']), str(body['app_version']), files)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise BackupFailed(f'{folder} is not a whole backup: its {MANIFEST_NAME} is missing or damaged') from None

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())


def copy_checked(source: BinaryIO, target: Path, mode: int = 0o644) -> FileEntry:
    """Copy `source` to a new file `target` (its folders made), on disk before this returns; its size and SHA-256
    are those of the bytes written, so the manifest describes the copy whatever happened to the original."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, 'wb') as handle:
        while block := source.read(COPY_BLOCK):
            digest.update(block)
            size += len(block)
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    return FileEntry(size, digest.hexdigest())


def checksum(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with path.open('rb') as handle:
        while block := handle.read(COPY_BLOCK):
            digest.update(block)
            size += len(block)
    return FileEntry(size, digest.hexdigest())


def sync_folder(folder: Path) -> None:
    """A rename or a new name is on disk only once its folder is synced."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    for path, _subfolders, _names in os.walk(folder):
        sync_folder(Path(path))


def plain_os_error(error: OSError, where: Path) -> str:
    """One plain line for what the disk said: full, not writable, or its own words."""
    if error.errno == 28:  # ENOSPC
        return f'not enough space at {where}'
    if isinstance(error, PermissionError) or error.errno == 30:  # EROFS
        return f'{where} is not writable'
    return f'{where}: {error.strerror or error}'
