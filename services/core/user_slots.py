"""A per-user cap on operations that run at once (saving a recording, say), so one user's crowd of requests
takes at most a few of the threads and processes every user shares; the rest get a plain "try again"."""

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from services.core.errors import TooManyRequests

RETRY_AFTER_S = 5


class UserSlots:
    def __init__(self, what: str, *, per_user: int) -> None:
        self.what = what  # plural, for the message: 'recordings being saved'
        self.per_user = per_user
        self._held: Counter[uuid.UUID] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def taken(self, user_id: uuid.UUID) -> Iterator[None]:
        """Holds one of the user's slots for the block, or refuses at once when all of them are held."""
        with self._lock:
            if self._held[user_id] >= self.per_user:
                raise TooManyRequests(
                    f'{self._held[user_id]} {self.what} of yours at once is the most; try again in a moment',
                    RETRY_AFTER_S,
                )
            self._held[user_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[user_id] -= 1
                if not self._held[user_id]:
                    del self._held[user_id]
