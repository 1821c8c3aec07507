"""Which live stream a compute thread hears next, and when there are more than the threads can keep up with.

A thread always takes the stream whose audio has waited longest, so the delay is shared out evenly; one stream is
advanced by one thread at a time, so its pieces come out in order. Past its capacity the page should say that the
live transcript is paused because the server is busy; the full pass after Stop still hears everything.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from services.core.errors import AppError
from services.transcripts.live import LivePiece, LiveStream

log = logging.getLogger(__name__)
STREAMS_PER_THREAD = 2  # measured (bench/live.py): 4 streams on 2 cores kept p95 at 6.0-6.4 s; 8 reached 10 s
MAX_LAG_S = 3.0  # ready audio waiting longer than this, for OVER_FOR_S on end, means more streams than threads
OVER_FOR_S = 5.0


@dataclass(frozen=True)
class LiveLoad:
    streams: int
    lag_s: float  # how long the oldest audio not yet looked at has waited
    over_capacity: bool  # the lag has stayed past its bound: pause a stream's live transcript, or take no more


class LiveScheduler:
    def __init__(
        self,
        *,
        on_pieces: Callable[[Hashable, list[LivePiece]], None],
        on_broken: Callable[[Hashable, Exception], None],
        threads: int | None = None,
        max_streams: int | None = None,
        max_lag_s: float = MAX_LAG_S,
        over_for_s: float = OVER_FOR_S,
        on_thread_start: Callable[[], None] | None = None,
    ) -> None:
        """`on_pieces(key, pieces)` hears a stream's new pieces, in order, on a compute thread (keep it short);
        `on_broken(key, error)` a stream given up (ffmpeg could not decode it), already closed and removed;
        `on_thread_start()` runs first on each compute thread (to lower its priority)."""
        self.on_thread_start = on_thread_start
        self.on_pieces, self.on_broken = on_pieces, on_broken
        self.threads = threads or os.cpu_count() or 1
        self.max_streams = max_streams or STREAMS_PER_THREAD * self.threads
        self.max_lag_s, self.over_for_s = max_lag_s, over_for_s
        self._streams: dict[Hashable, LiveStream] = {}
        self._busy: set[Hashable] = set()
        self._leaving: set[Hashable] = set()
        self._ready = threading.Condition()
        self._stopping = False
        self._over_since: float | None = None
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name=f'live-{i}') for i in range(self.threads)
        ]

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        """Finish the calls under way, then close every stream."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for worker in self._workers:
            worker.join()
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()

    def add(self, key: Hashable, stream: LiveStream) -> bool:
        """Take a stream on; False (and the stream left alone) when it already has `max_streams`."""
        with self._ready:
            if len(self._streams) >= self.max_streams:
                return False
            self._streams[key] = stream
        stream.on_audio = self._wake
        self._wake()
        return True

    def remove(self, key: Hashable) -> None:
        """Stop hearing a stream and close it (after its call under way, if any)."""
        with self._ready:
            if key in self._busy:
                self._leaving.add(key)
                return
            stream = self._streams.pop(key, None)
        if stream is not None:
            stream.close()

    def load(self) -> LiveLoad:
        with self._ready:
            return LiveLoad(len(self._streams), *self._lag())

    def _lag(self) -> tuple[float, bool]:
        """Called with the lock held: the longest wait now, and whether it has stayed past its bound."""
        now = time.monotonic()
        waits = [now - since for stream in self._streams.values() if (since := stream.waiting_since) is not None]
        lag = max(waits, default=0.0)
        if lag <= self.max_lag_s:
            self._over_since = None
        elif self._over_since is None:
            self._over_since = now
        return lag, self._over_since is not None and now - self._over_since >= self.over_for_s

    def _wake(self) -> None:
        with self._ready:
            self._ready.notify()

    def _next(self) -> tuple[Hashable, LiveStream, float] | None:
        """The stream whose audio has waited longest, and how much longer than its policy says speech that goes on
        may run before it is heard: with more streams than threads, each is heard less often (fewer calls)."""
        with self._ready:
            while not self._stopping:
                waiting = [
                    (since, index, key)
                    for index, (key, stream) in enumerate(self._streams.items())
                    if key not in self._busy and (since := stream.waiting_since) is not None
                ]
                if waiting:
                    key = min(waiting)[2]
                    self._busy.add(key)
                    self._lag()
                    return key, self._streams[key], max(1.0, len(self._streams) / self.threads)
                self._ready.wait()
            return None

    def _work(self) -> None:
        if self.on_thread_start is not None:
            self.on_thread_start()
        while (taken := self._next()) is not None:
            key, stream, stretch = taken
            error: Exception | None = None
            try:
                if pieces := stream.advance(max_piece_s=stream.policy.max_piece_s * stretch):
                    self.on_pieces(key, pieces)  # before the stream is free again: pieces stay in order
            except Exception as problem:  # a stream's failure (ffmpeg, or the model on its audio) ends that stream
                if not isinstance(problem, AppError):
                    log.exception('live transcript of %s failed', key)
                error = problem
            with self._ready:
                self._busy.discard(key)
                leaving = error is not None or key in self._leaving
                if leaving:
                    self._leaving.discard(key)
                    self._streams.pop(key, None)
                self._ready.notify()
            if leaving:
                stream.close()
            if error is not None:
                self.on_broken(key, error)
