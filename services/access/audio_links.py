"""Expiring HMAC signatures so an `<audio>` tag can fetch a recording without an Authorization header."""

import time
import uuid

from services.audio.exports import MP3_TYPE, recording_mp3_key
from services.audio.formats import audio_format
from services.core.models import Recording
from services.core.signatures import purpose_key, same, signature
from services.recordings.service import download_name, recording_audio_key
from services.storage.protocol import Storage


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

    def url(self, recording: Recording, *, download: bool = False, mp3: bool = False) -> str:
        """The original recording, or (with `mp3`) its MP3 copy, which ExportService must have made first."""
        key, content_type = (
            (recording_mp3_key(recording), MP3_TYPE)
            if mp3
            else (recording_audio_key(recording), audio_format(recording.mime_type).mime_type)
        )
        name = download_name(recording, mp3=mp3) if download else None
        if direct := self.storage.direct_url(key, content_type=content_type, download_name=name):
            return direct
        expires, signature = self.signer.sign(recording.id)
        suffix = ('&download=1' if download else '') + ('&format=mp3' if mp3 else '')
        return f'/api/recordings/{recording.id}/audio?expires={expires}&signature={signature}{suffix}'
