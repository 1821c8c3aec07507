"""Expiring HMAC signatures so an `<audio>` tag can fetch a recording without an Authorization header."""

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass

from .audio import audio_format
from .exports import MP3_TYPE, mp3_key
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
        return _same(self._signature(recording_id, expires), signature)

    def _signature(self, recording_id: uuid.UUID, expires: int) -> str:
        return hmac.new(self._key, f'{recording_id}:{expires}'.encode(), hashlib.sha256).hexdigest()


class AudioLinks:
    """The playable and downloadable URLs of a ready recording: the storage's own (presigned S3) when it has one."""

    def __init__(self, signer: AudioUrlSigner, storage: Storage) -> None:
        self.signer = signer
        self.storage = storage

    def url(self, recording: Recording, *, download: bool = False, mp3: bool = False) -> str:
        """The original recording, or (with `mp3`) its MP3 copy, which ExportService must have made first."""
        key, content_type = (
            (mp3_key(recording), MP3_TYPE)
            if mp3
            else (audio_key(recording), audio_format(recording.mime_type).mime_type)
        )
        name = download_name(recording, mp3=mp3) if download else None
        if direct := self.storage.direct_url(key, content_type=content_type, download_name=name):
            return direct
        expires, signature = self.signer.sign(recording.id)
        suffix = ('&download=1' if download else '') + ('&format=mp3' if mp3 else '')
        return f'/api/recordings/{recording.id}/audio?expires={expires}&signature={signature}{suffix}'


@dataclass(frozen=True)
class UploadGrant:
    user_id: uuid.UUID
    credential_version: int


class UploadTokens:
    """Short-lived credentials that let a recorder page stream audio, independent of the page's socket session.

    The page's NiceGUI client dies with a server restart; this token does not, so a recording in progress
    can reconnect to a restarted server and keep uploading. It carries the user's credential version, so
    "sign out everywhere" and a key rotation end it at once.
    """

    def __init__(self, secret: str, lifetime_s: int = 24 * 3600) -> None:
        self._key = hashlib.sha256(b'upload-token:' + secret.encode()).digest()
        self.lifetime_s = lifetime_s

    def issue(self, user_id: uuid.UUID, credential_version: int = 1, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        claim = f'{user_id}.{credential_version}.{expires}'
        return f'{claim}.{self._signature(claim)}'

    def verify(self, token: object, now: float | None = None) -> UploadGrant | None:
        """Who the token speaks for, or None when it is malformed, tampered with or expired."""
        if not isinstance(token, str) or token.count('.') != 3:
            return None
        claim, _, signature = token.rpartition('.')
        user, version, expires = claim.split('.')
        if not (version.isdigit() and expires.isdigit()) or int(expires) < (now if now is not None else time.time()):
            return None
        if not _same(self._signature(claim), signature):
            return None
        try:
            return UploadGrant(uuid.UUID(user), int(version))
        except ValueError:
            return None

    def _signature(self, claim: str) -> str:
        return hmac.new(self._key, claim.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (compare_digest refuses such str)."""
    return hmac.compare_digest(expected.encode(), given.encode('utf-8', 'surrogateescape'))
