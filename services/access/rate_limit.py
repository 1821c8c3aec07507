"""Request limits on the `limits` library: per user or per client address, in memory or shared through Redis.

With a Redis URL every instance counts in the same windows, so a limit holds however many instances serve.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from services.core.config import Settings
from services.core.errors import TooManyRequests

log = logging.getLogger(__name__)
WINDOWS: dict[str, type[RateLimitItem]] = {'minute': RateLimitItemPerMinute, 'hour': RateLimitItemPerHour}
PURGE_EVERY_S = 10.0


class MemoryStorageWithoutTimers(MemoryStorage):
    """`limits`' in-memory store, with its expired windows dropped on a hit at most every `purge_every_s`.

    The library drops them from a `threading.Timer` it starts again 10 ms after the last one ended, so while hits
    come it starts a thread every 10 ms; `Thread.start` waits until the new thread runs, and on the event loop of a
    busy server that wait held up every chunk acknowledgement (py-spy: 7 % of the loop's samples beside 200
    recorders, 10 % with the transcript workers busy). A count past its window is ignored when read either way
    (`MemoryStorage.get`), so the purge only keeps the memory bounded.
    """

    def __init__(self, *, purge_every_s: float = PURGE_EVERY_S) -> None:
        super().__init__()
        self.purge_every_s = purge_every_s
        self._purged_at = time.monotonic()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the library's (name-mangled) timer start
        now = time.monotonic()
        if now - self._purged_at >= self.purge_every_s:
            self._purged_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]  # the library's, name-mangled


class RateLimiter:
    """At most `amount` hits per `window` for each key (a user id or an address), over a sliding window.

    A sliding-window counter keeps two numbers per key; a moving window keeps every hit, and the in-memory store
    re-scans all of them every 10 ms: with hundreds of recorders that scan took a seventh of the server's CPU.
    """

    def __init__(self, name: str, *, amount: int, window: Literal['minute', 'hour'], storage: Storage) -> None:
        self.name, self.window, self._storage = name, window, storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self.amount = amount

    @property
    def amount(self) -> int:
        return self._item.amount

    @amount.setter
    def amount(self, amount: int) -> None:
        self._item = WINDOWS[self.window](amount)  # the amount is part of the key: a new limit counts afresh

    def hit(self, key: object) -> None:
        """Count one hit, or raise TooManyRequests saying when to come back. An unreachable store lets it pass:
        losing the limit for a while is better than refusing every recording."""
        try:
            if self._strategy.hit(self._item, self.name, str(key)):
                return
            reset_at = self._strategy.get_window_stats(self._item, self.name, str(key)).reset_time
        except StorageError as error:
            log.warning('rate limit store unreachable, %s is not limited: %s', self.name, error)
            return
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise TooManyRequests(
            f'too many {self.name}: at most {self.amount} per {self.window}; try again in {retry_after} s', retry_after
        )

    async def hit_async(self, key: object) -> None:
        """In memory a hit takes microseconds, so it is counted on the event loop; a remote store is a network call."""
        if isinstance(self._storage, MemoryStorage):
            self.hit(key)
        else:
            await asyncio.to_thread(self.hit, key)


@dataclass
class RateLimits:
    api: RateLimiter
    onboard: RateLimiter
    vr_connects: RateLimiter
    vr_events: RateLimiter
    transcribe_again: RateLimiter


def build_rate_limits(settings: Settings) -> RateLimits:
    if settings.redis_url:
        storage = storage_from_string(settings.redis_url, wrap_exceptions=True)
        assert isinstance(storage, Storage)  # a plain URI gives a synchronous store
    else:
        storage = MemoryStorageWithoutTimers()
    return RateLimits(
        api=RateLimiter('requests', amount=settings.api_requests_per_minute, window='minute', storage=storage),
        onboard=RateLimiter(
            'sign-ups or sign-ins', amount=settings.onboard_per_address_per_hour, window='hour', storage=storage
        ),
        vr_connects=RateLimiter(
            'connections', amount=settings.vr_connects_per_address_per_minute, window='minute', storage=storage
        ),
        vr_events=RateLimiter(
            'audio messages', amount=settings.vr_events_per_user_per_minute, window='minute', storage=storage
        ),
        transcribe_again=RateLimiter(
            'transcripts made again', amount=settings.transcribe_again_per_user_per_hour, window='hour', storage=storage
        ),
    )


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """Who to count a request against. Each trusted proxy appends the address it got the request from to
    X-Forwarded-For, so the client is that many entries from the right; anything further left the client wrote."""
    if trusted_proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(',') if hop.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies]
    return peer or 'unknown'
