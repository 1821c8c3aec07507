"""The in-memory rate limits (no Redis): counted on the event loop, so a hit must never wait for a thread to start."""

import threading
import time

import pytest

from services.access.rate_limit import MemoryStorageWithoutTimers, RateLimiter
from services.core.errors import TooManyRequests


def test_hits_start_no_thread_and_still_refuse_past_the_amount(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    storage = MemoryStorageWithoutTimers()
    limiter = RateLimiter('audio messages', amount=300, window='minute', storage=storage)
    monkeypatch.setattr(threading.Thread, 'start', counted)
    deadline = time.monotonic() + 0.1  # the library's store started a timer thread every 10 ms while hits came
    hits = 0
    while time.monotonic() < deadline or hits < 300:
        limiter.hit('user')
        hits += 1
        time.sleep(0.001)
    with pytest.raises(TooManyRequests):
        limiter.hit('user')
    assert started == []


def test_windows_past_their_time_are_dropped_from_memory() -> None:
    storage = MemoryStorageWithoutTimers(purge_every_s=0)
    storage.incr('a window that ends at once', expiry=0.001)
    time.sleep(0.01)
    storage.incr('a window of a minute', expiry=60)
    assert list(storage.storage) == ['a window of a minute']
    assert list(storage.expirations) == ['a window of a minute']
