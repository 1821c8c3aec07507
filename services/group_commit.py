"""Group commit: callers that arrive together share one transaction, so one fsync makes all their rows durable.

No extra thread: a caller that finds nobody writing becomes the leader and writes everything queued so far; callers
that arrive meanwhile wait, and the oldest of them leads the next batch. Each caller returns only once its own row
is committed.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar('T')
R = TypeVar('R')


@dataclass
class _Entry(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None
    waiting: threading.Event = field(default_factory=threading.Event)


class GroupCommit(Generic[T, R]):
    def __init__(self, write_batch: Callable[[list[T]], list[R | BaseException]], max_batch: int = 500) -> None:
        """`write_batch` commits the items in one transaction and returns one result or exception per item."""
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._queue: list[_Entry[T, R]] = []
        self._guard = threading.Lock()
        self._writing = False

    def submit(self, item: T) -> R:
        """Blocks until `item` is committed; returns its result or raises its exception."""
        entry: _Entry[T, R] = _Entry(item)
        with self._guard:
            self._queue.append(entry)
        while True:
            entry.waiting.clear()  # before looking, so a wake-up that comes after the look is not missed
            with self._guard:
                if entry.done:
                    break
                leading = not self._writing
                if leading:
                    self._writing = True
                    batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            if leading:
                try:
                    self._finish(batch)
                finally:  # whatever went wrong in this batch, the callers behind it must not wait forever
                    self._hand_over()
            else:
                entry.waiting.wait()
        if entry.error is not None:
            raise entry.error
        return entry.result  # type: ignore[return-value]

    def _hand_over(self) -> None:
        """A leader writes only until its own row is in, then wakes the oldest waiter to lead the next batch."""
        with self._guard:
            self._writing = False
            successor = self._queue[0] if self._queue else None
        if successor is not None:
            successor.waiting.set()

    def _finish(self, batch: list[_Entry[T, R]]) -> None:
        """Every entry of the batch ends done, with its result or an error, even if the bookkeeping fails."""
        try:
            outcomes = self._write_batch([entry.item for entry in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f'the batch writer returned {len(outcomes)} outcomes for {len(batch)} items')
        except BaseException as error:  # the whole batch failed: every caller in it sees the error
            outcomes = [error] * len(batch)
        try:
            for entry, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    entry.error = outcome
                else:
                    entry.result = outcome
                entry.done = True
                entry.waiting.set()
        finally:
            for entry in batch:
                if not entry.done:
                    entry.error = entry.error or RuntimeError('the batch was not written')
                    entry.done = True
                    entry.waiting.set()
