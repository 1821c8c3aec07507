"""Whether a browser session or an upload token still speaks for its user, as often as pages and audio ask.

Every open page looks twice a second and every audio message asks, so each process keeps what it last read of each
user's credentials and never answers from a read `max_age_s` old. What is asked for past half that age is read again
for everyone at once, in one query (`read` takes many users): 200 recording users cost a few queries a second rather
than 200 (measured on the event loop and its threads: a tenth of the web process's CPU at 200 recorders). A first
ask, an answer that could not wait for the shared read, and an action that changes something (`fresh`) read alone.
"""

import asyncio
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from services.core.errors import Unauthorized

SIGNED_OUT = 'you have been signed out; sign in again'
MAX_CACHED_USERS = 10_000
MAX_USERS_PER_READ = 500  # ids in one query's IN list


@dataclass(frozen=True)
class Credentials:
    """A user's credential version (None: no such user) and the browser sessions signed out one by one."""

    version: int | None
    ended_sessions: frozenset[uuid.UUID] = frozenset()

    def verify(self, version: int, session_id: uuid.UUID | None = None) -> None:
        if self.version != version or session_id in self.ended_sessions:
            raise Unauthorized(SIGNED_OUT)


ReadMany = Callable[[Collection[uuid.UUID]], Mapping[uuid.UUID, Credentials]]


class CredentialCache:
    def __init__(self, read: ReadMany, max_age_s: float) -> None:
        """`read`: the credentials of the users asked for (a user left out has none: no such user)."""
        self._read = read
        self.max_age_s = max_age_s
        # When each entry's read began, and what it found; None once this process revoked something of the user's.
        self._known: dict[uuid.UUID, tuple[float, Credentials | None]] = {}
        self._reading: dict[uuid.UUID, tuple[float, asyncio.Task[Credentials]]] = {}
        self._due: set[uuid.UUID] = set()  # asked for past half their age: read together by `_read_due`
        self._reading_due: asyncio.Task[None] | None = None

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
            if now - read_at >= self.max_age_s / 2:
                self._read_soon(user_id)
            return known
        started, reading = self._reading.get(user_id, (-1.0, None))
        if reading is None or fresh or started < read_at:  # a read begun before a revocation may miss it
            started, reading = now, asyncio.create_task(self._read_once(user_id, now))
            reading.add_done_callback(lambda task: task.cancelled() or task.exception())  # every asker may have gone
            self._reading[user_id] = (started, reading)
        return await asyncio.shield(reading)  # an asker that is cancelled leaves the shared read to the others

    async def _read_once(self, user_id: uuid.UUID, started: float) -> Credentials:
        try:
            credentials = (await asyncio.to_thread(self._read, (user_id,))).get(user_id, Credentials(None))
        finally:
            if self._reading.get(user_id, (None,))[0] == started:
                del self._reading[user_id]
        self._keep(user_id, started, credentials)
        return credentials

    def _read_soon(self, user_id: uuid.UUID) -> None:
        """Into the next shared read, which waits a quarter of the age to gather the users falling due meanwhile: read
        at most three quarters old, each entry is new again before an ask would have to read it alone."""
        self._due.add(user_id)
        if self._reading_due is None or self._reading_due.get_loop() is not asyncio.get_running_loop():
            self._reading_due = asyncio.create_task(self._read_due())
            self._reading_due.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _read_due(self) -> None:
        try:
            await asyncio.sleep(self.max_age_s / 4)
            while self._due:
                started = time.monotonic()
                popped = [self._due.pop() for _ in range(min(len(self._due), MAX_USERS_PER_READ))]
                users = [user for user in popped if not self._fresher_than(user, started - self.max_age_s / 2)]
                if not users:
                    continue
                found = await asyncio.to_thread(self._read, users)
                for user_id in users:
                    self._keep(user_id, started, found.get(user_id, Credentials(None)))
        finally:
            if self._reading_due is asyncio.current_task():
                self._reading_due = None

    def _fresher_than(self, user_id: uuid.UUID, moment: float) -> bool:
        """Read since `moment` (by the last shared read, or alone): not to be read again yet."""
        read_at, known = self._known.get(user_id, (-1.0, None))
        return known is not None and read_at > moment

    def _keep(self, user_id: uuid.UUID, started: float, credentials: Credentials) -> None:
        """A read's answer, unless something newer is known: a read begun before a revocation here may miss it."""
        if started >= self._known.get(user_id, (-1.0, None))[0]:
            self._known[user_id] = (started, credentials)
            if len(self._known) > MAX_CACHED_USERS:
                self._forget_old()

    def _forget_old(self) -> None:
        oldest = time.monotonic() - self.max_age_s
        for user_id, (read_at, _) in list(self._known.items()):  # a copy: `forget` may add to it from a thread
            if read_at < oldest:
                self._known.pop(user_id, None)
