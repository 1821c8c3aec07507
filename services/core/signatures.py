"""HMAC primitives shared by the expiring audio URLs and the upload tokens: one key per purpose from one secret."""

import hashlib
import hmac


def purpose_key(secret: str, purpose: str) -> bytes:
    """A key of its own per use, so a signature made for one purpose never verifies for another."""
    return hashlib.sha256(f'{purpose}:'.encode() + secret.encode()).digest()


def signature(key: bytes, claim: str) -> str:
    return hmac.new(key, claim.encode(), hashlib.sha256).hexdigest()


def same(expected: str, given: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (compare_digest refuses such str)."""
    return hmac.compare_digest(expected.encode(), given.encode('utf-8', 'surrogateescape'))
