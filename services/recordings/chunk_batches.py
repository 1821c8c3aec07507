"""Group commit on the event loop, the one way chunks reach storage: chunks that arrive while a batch is being
stored (from the audio channel and the REST API alike) form the next batch.

A thread per chunk that then waits for a shared commit costs more than the storing when chunks are small and
many: every wake-up and hand-over has to win the GIL back from the event loop, and each waiting request holds a
thread others need. Here the loop only queues each chunk; one thread stores a whole batch at a time and the loop
hands out the answers.
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from services.core.errors import ServiceUnavailable
from services.recordings.chunks import ChunkReceipt, ChunkUpload

log = logging.getLogger(__name__)
StoreBatch = Callable[[list[ChunkUpload]], list[ChunkReceipt | BaseException]]
MAX_BATCH = 500


class ChunkBatches:
    def __init__(self, store: StoreBatch, *, max_batch: int = MAX_BATCH, max_in_flight: int | None = None) -> None:
        """`store` stores a batch durably and returns one receipt or exception per chunk, in order. Past
        `max_in_flight` chunks waiting or being stored, more are refused as busy (the sender keeps and resends
        them): past capacity a queue only grows, and each waiting chunk holds its bytes in memory."""
        self._store = store
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self.in_flight = 0
        self._waiting: list[tuple[ChunkUpload, asyncio.Future[ChunkReceipt]]] = []
        self._storing: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix='vr-chunks')
        self._closed = False

    async def store(self, upload: ChunkUpload) -> ChunkReceipt:
        """Returns once the chunk is durable, or raises why it is not."""
        if self._closed:
            raise ServiceUnavailable('the server is shutting down; this will be sent again')
        if self._max_in_flight is not None and self.in_flight >= self._max_in_flight:
            raise ServiceUnavailable('the server is busy; the chunk will be sent again')
        answer: asyncio.Future[ChunkReceipt] = asyncio.get_running_loop().create_future()
        self._waiting.append((upload, answer))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_all(), name='store chunk batches')
        self.in_flight += 1
        try:
            return await answer
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        self._closed = True
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _store_all(self) -> None:
        """Batch after batch until nothing waits; whatever happens, no chunk is left without an answer."""
        batch: list[tuple[ChunkUpload, asyncio.Future[ChunkReceipt]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                outcomes = await self._outcomes([upload for upload, _answer in batch])
                for (_upload, answer), outcome in zip(batch, outcomes, strict=True):
                    _settle(answer, outcome)
                batch = []
        except BaseException as error:  # cancelled at shutdown, or a bug: the browsers keep the audio and resend it
            if not isinstance(error, asyncio.CancelledError):
                log.exception('storing a batch of chunks failed')
            for _upload, answer in batch + self._waiting:
                _settle(answer, ServiceUnavailable('the chunk could not be stored just now; it will be sent again'))
            self._waiting = []
            raise

    async def _outcomes(self, uploads: list[ChunkUpload]) -> list[ChunkReceipt | BaseException]:
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self._thread, self._store, uploads)
        except RuntimeError:  # the thread is shut down: the app is stopping
            return [ServiceUnavailable('the server is shutting down; this will be sent again')] * len(uploads)
        if len(outcomes) != len(uploads):
            raise RuntimeError(f'{len(outcomes)} outcomes for {len(uploads)} chunks')
        return outcomes


def _settle(answer: 'asyncio.Future[ChunkReceipt]', outcome: ChunkReceipt | BaseException) -> None:
    if answer.done():  # its sender went away (a dropped connection cancels the handler)
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
    else:
        answer.set_result(outcome)
