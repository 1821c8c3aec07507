"""Whether a browser session or an upload token still speaks for its user, as often as pages and audio ask.

Every open page looks twice a second and every audio message asks, so each process keeps what it last read of each
user's credentials and reads again once that is `max_age_s` old: the database sees one read per user per interval,
however many pages and connections ask. An action that changes something asks `fresh` and always reads.
"""

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.core.errors import Unauthorized

SIGNED_OUT = 'you have been signed out; sign in again'
MAX_CACHED_USERS = 10_000


@dataclass(frozen=True)
class Credentials:
    """A user's credential version (None: no such user) and the browser sessions signed out one by one."""

    version: int | None
    ended_sessions: frozenset[uuid.UUID] = frozenset()

    def verify(self, version: int, session_id: uuid.UUID | None = None) -> None:
        if self.version != version or session_id in self.ended_sessions:
            raise Unauthorized(SIGNED_OUT)


class CredentialCache:
    def __init__(self, read: Callable[[uuid.UUID], Credentials], max_age_s: float) -> None:
        self._read = read
        self.max_age_s = max_age_s
        # When each entry's read began, and what it found; None once this process revoked something of the user's.
        self._known: dict[uuid.UUID, tuple[float, Credentials | None]] = {}
        self._reading: dict[uuid.UUID, tuple[float, asyncio.Task[Credentials]]] = {}

    async def check(
        self, user_id: uuid.UUID, version: int, session_id: uuid.UUID | None = None, *, fresh: bool = False
    ) -> None:
        """Raise Unauthorized unless the credential still holds; `fresh` reads the database rather than the cache."""
        (await self._credentials(user_id, fresh)).verify(version, session_id)

    def forget(self, user_id: uuid.UUID) -> None:
        """Called (from any thread) after a revocation here: the next check reads again, never an older read."""
        self._known[user_id] = (time.monotonic(), None)

    async def _credentials(self, user_id: uuid.UUID, fresh: bool) -> Credentials:
        now = time.monotonic()
        read_at, known = self._known.get(user_id, (-1.0, None))
        if known is not None and not fresh and now - read_at < self.max_age_s:
            return known
        started, reading = self._reading.get(user_id, (-1.0, None))
        if reading is None or fresh or started < read_at:  # a read begun before a revocation may miss it
            started, reading = now, asyncio.create_task(self._read_once(user_id, now))
            reading.add_done_callback(lambda task: task.cancelled() or task.exception())  # every asker may have gone
            self._reading[user_id] = (started, reading)
        return await asyncio.shield(reading)  # an asker that is cancelled leaves the shared read to the others

    async def _read_once(self, user_id: uuid.UUID, started: float) -> Credentials:
        try:
            credentials = await asyncio.to_thread(self._read, user_id)
        finally:
            if self._reading.get(user_id, (None,))[0] == started:
                del self._reading[user_id]
        if started >= self._known.get(user_id, (-1.0, None))[0]:
            self._known[user_id] = (started, credentials)
            if len(self._known) > MAX_CACHED_USERS:
                self._forget_old()
        return credentials

    def _forget_old(self) -> None:
        oldest = time.monotonic() - self.max_age_s
        for user_id, (read_at, _) in list(self._known.items()):  # a copy: `forget` may add to it from a thread
            if read_at < oldest:
                self._known.pop(user_id, None)
