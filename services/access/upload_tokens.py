"""Signed upload tokens: what lets a recorder page stream audio to this server, or to a restarted one."""

import time
import uuid
from dataclasses import dataclass

from services.core.signatures import purpose_key, same, signature

UPLOAD_TOKEN_LIFETIME_S = 24 * 3600


@dataclass(frozen=True)
class UploadGrant:
    user_id: uuid.UUID
    credential_version: int
    session_id: uuid.UUID | None = None  # None: issued before tokens named their browser session


class UploadTokens:
    """Short-lived credentials that let a recorder page stream audio, independent of the page's socket session.

    The page's NiceGUI client dies with a server restart; this token does not, so a recording in progress
    can reconnect to a restarted server and keep uploading. It carries the user's credential version and the
    browser session it was issued to, so "sign out everywhere", a key rotation and that browser's "Sign out" end it.
    """

    def __init__(self, secret: str, lifetime_s: int = UPLOAD_TOKEN_LIFETIME_S) -> None:
        self._key = purpose_key(secret, 'upload-token')
        self.lifetime_s = lifetime_s

    def issue(
        self,
        user_id: uuid.UUID,
        credential_version: int = 1,
        *,
        session_id: uuid.UUID | None = None,
        now: float | None = None,
    ) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime_s)
        session = f'{session_id}.' if session_id else ''
        claim = f'{user_id}.{credential_version}.{session}{expires}'
        return f'{claim}.{self._signature(claim)}'

    def verify(self, token: object, now: float | None = None) -> UploadGrant | None:
        """Who the token speaks for, or None when it is malformed, tampered with or expired."""
        if not isinstance(token, str) or token.count('.') not in (3, 4):
            return None
        claim, _, given = token.rpartition('.')
        user, version, *session, expires = claim.split('.')  # tokens issued before sessions were named have none
        if not (whole_number(version) and whole_number(expires)):
            return None
        if int(expires) < (now if now is not None else time.time()):
            return None
        if not same(self._signature(claim), given):
            return None
        try:
            return UploadGrant(uuid.UUID(user), int(version), uuid.UUID(session[0]) if session else None)
        except ValueError:
            return None

    def _signature(self, claim: str) -> str:
        return signature(self._key, claim)


def whole_number(text: str) -> bool:
    """A few ASCII digits: `'²'.isdigit()` holds but int() refuses it, and int() of thousands of digits raises."""
    return text.isascii() and text.isdigit() and len(text) <= 12
