"""Expiring HMAC signatures so an `<audio>` tag can fetch a recording without an Authorization header."""

import hashlib
import hmac
import time
import uuid

from .audio import audio_format
from .models import Recording
from .recordings import audio_key, download_name
from .storage import Storage


class AudioUrlSigner:
    def __init__(self, secret: str, expiry_s: int) -> None:
        self._key = hashlib.sha256(b'audio-url:' + secret.encode()).digest()
        self.expiry_s = expiry_s

    def sign(self, recording_id: uuid.UUID, now: float | None = None) -> tuple[int, str]:
        expires = int((now if now is not None else time.time()) + self.expiry_s)
        return expires, self._signature(recording_id, expires)

    def verify(self, recording_id: uuid.UUID, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._signature(recording_id, expires), signature)

    def _signature(self, recording_id: uuid.UUID, expires: int) -> str:
        return hmac.new(self._key, f'{recording_id}:{expires}'.encode(), hashlib.sha256).hexdigest()


class AudioLinks:
    """The playable and downloadable URLs of a ready recording: the storage's own (presigned S3) when it has one."""

    def __init__(self, signer: AudioUrlSigner, storage: Storage) -> None:
        self.signer = signer
        self.storage = storage

    def url(self, recording: Recording, *, download: bool = False) -> str:
        content_type = audio_format(recording.mime_type).mime_type
        name = download_name(recording) if download else None
        if direct := self.storage.direct_url(audio_key(recording), content_type=content_type, download_name=name):
            return direct
        expires, signature = self.signer.sign(recording.id)
        suffix = '&download=1' if download else ''
        return f'/api/recordings/{recording.id}/audio?expires={expires}&signature={signature}{suffix}'
