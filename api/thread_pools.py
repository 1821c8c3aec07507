"""The thread pools that blocking work runs on, all sized by one setting (`VR_WORKER_THREADS`).

FastAPI runs sync routes and dependencies through anyio's limiter (40 by default), `asyncio.to_thread` uses the
loop's default executor (6 threads on two cores) and page actions use NiceGUI's `run.io_bound` pool (6 too). Work
that waits for other work (an encode, a transcription) is awaited instead, so these threads only ever do work.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread

from api.nicegui_internals import size_page_thread_pool


def size_thread_pools(threads: int) -> None:
    """Call it on the running loop, at start-up: anyio's limiter and the default executor belong to the loop."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix='asyncio'))
    size_page_thread_pool(threads)
