"""Copy many small objects into one file in key order, fetching several at once when the storage is remote.

Each S3 GET costs a round trip; thousands of chunk objects fetched one by one would make finalize take
minutes. A bounded window of futures keeps the order strict and the memory at most `2 × workers` chunks.
"""

import io
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from services.storage.protocol import Storage


def read_object(storage: Storage, key: str) -> bytes:
    """One object's bytes: for small ones (a chunk), never a recording's file."""
    buffer = io.BytesIO()
    storage.copy_to(key, buffer)
    return buffer.getvalue()


def copy_in_order(storage: Storage, keys: Sequence[str], target: BinaryIO, *, workers: int = 1) -> int:
    """Write every object under `keys` to `target`, in order; returns the number of bytes written."""
    if workers <= 1:
        return sum(storage.copy_to(key, target) for key in keys)
    written = 0
    upcoming = iter(keys)
    pending: deque[Future[bytes]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix='ordered-fetch')
    try:
        for key in upcoming:
            pending.append(pool.submit(read_object, storage, key))
            if len(pending) >= 2 * workers:
                written += target.write(pending.popleft().result())
        while pending:
            written += target.write(pending.popleft().result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return written
