"""Per-user request limits for the API: a sliding one-minute window, kept in this instance's memory.

Behind a load balancer each instance counts on its own; with sticky sessions a user mostly meets one.
"""

import math
import threading
import time
import uuid
from collections import deque

from .errors import TooManyRequests

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[uuid.UUID, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, user_id: uuid.UUID, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(user_id, deque())
            while hits and hits[0] <= now - WINDOW_S:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry_after = max(1, math.ceil(hits[0] + WINDOW_S - now))
                raise TooManyRequests(f'too many requests: at most {self.per_minute} a minute', retry_after)
            hits.append(now)
            if len(self._hits) > 10_000:  # forget idle users so memory stays bounded
                self._hits = {uid: h for uid, h in self._hits.items() if h and h[-1] > now - WINDOW_S}
