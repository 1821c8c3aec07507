"""Signed upload tokens: what lets a recorder page stream audio to this server, or to a restarted one."""

import time
import uuid
from dataclasses import dataclass

from .signatures import purpose_key, same, signature


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
        self._key = purpose_key(secret, 'upload-token')
        self.lifetime_s = lifetime_s

    def issue(self, user_id: uuid.UUID, credential_version: int = 1, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        claim = f'{user_id}.{credential_version}.{expires}'
        return f'{claim}.{self._signature(claim)}'

    def verify(self, token: object, now: float | None = None) -> UploadGrant | None:
        """Who the token speaks for, or None when it is malformed, tampered with or expired."""
        if not isinstance(token, str) or token.count('.') != 3:
            return None
        claim, _, given = token.rpartition('.')
        user, version, expires = claim.split('.')
        if not (version.isdigit() and expires.isdigit()) or int(expires) < (now if now is not None else time.time()):
            return None
        if not same(self._signature(claim), given):
            return None
        try:
            return UploadGrant(uuid.UUID(user), int(version))
        except ValueError:
            return None

    def _signature(self, claim: str) -> str:
        return signature(self._key, claim)
