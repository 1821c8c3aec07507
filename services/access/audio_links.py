"""Expiring HMAC signatures so an `<audio>` tag can fetch a recording without an Authorization header."""

import time
import uuid
from typing import Literal

from services.audio.exports import MP3_TYPE, recording_mp3_key
from services.audio.formats import audio_format
from services.core.models import Recording
from services.core.signatures import purpose_key, same, signature
from services.recordings.download_names import download_name, file_name
from services.recordings.imports import original_file
from services.recordings.service import recording_audio_key
from services.storage.protocol import Storage

# 'original': the audio the app plays (for a recording, what was recorded); 'mp3': its MP3 copy; 'imported': the
# file as the user imported it, kept apart where the app plays a copy (for recorded audio, the same as 'original').
FileKind = Literal['original', 'mp3', 'imported']


class AudioUrlSigner:
    def __init__(self, secret: str, expiry_s: int) -> None:
        self._key = purpose_key(secret, 'audio-url')
        self.expiry_s = expiry_s

    def sign(self, recording_id: uuid.UUID, now: float | None = None) -> tuple[int, str]:
        expires = int((now if now is not None else time.time()) + self.expiry_s)
        return expires, self._signature(recording_id, expires)

    def verify(self, recording_id: uuid.UUID, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        return same(self._signature(recording_id, expires), signature)

    def _signature(self, recording_id: uuid.UUID, expires: int) -> str:
        return signature(self._key, f'{recording_id}:{expires}')


class AudioLinks:
    """The playable and downloadable URLs of a ready recording: the storage's own (presigned S3) when it has one."""

    def __init__(self, signer: AudioUrlSigner, storage: Storage) -> None:
        self.signer = signer
        self.storage = storage

    def url(self, recording: Recording, *, download: bool = False, kind: FileKind = 'original') -> str:
        """One of the recording's files (see `stored_file`); an MP3 copy ExportService must have made first."""
        key, content_type, name = stored_file(self.storage, recording, kind)
        if direct := self.storage.direct_url(key, content_type=content_type, download_name=name if download else None):
            return direct
        expires, signature = self.signer.sign(recording.id)
        suffix = ('&download=1' if download else '') + ('' if kind == 'original' else f'&format={kind}')
        return f'/api/recordings/{recording.id}/audio?expires={expires}&signature={signature}{suffix}'


def stored_file(storage: Storage, recording: Recording, kind: FileKind) -> tuple[str, str, str]:
    """Where one of a recording's files is stored, its type, and the name a download gives it."""
    if kind == 'mp3':
        return recording_mp3_key(recording), MP3_TYPE, download_name(recording, mp3=True)
    if kind == 'imported':
        key, fmt = original_file(storage, recording)
        return key, fmt.mime_type, file_name(recording, fmt.extension)
    return recording_audio_key(recording), audio_format(recording.mime_type).mime_type, download_name(recording)
