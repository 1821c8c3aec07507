"""How the web process's C heap is laid out, so its memory stays flat over days.

glibc gives each thread that finds the heap busy an arena of its own, up to 8 per core. The web process runs about
60 threads (uvicorn, the thread pools, SQLite's and the storage's I/O); freed memory stays scattered over every arena
and is rarely given back, so the resident size creeps up with each busy moment and never comes down. Two arenas
keep the heap compact at a cost the day benchmark cannot see (its allocations are small and short)."""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

WEB_PROCESS_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(count: int = WEB_PROCESS_ARENAS) -> bool:
    """Caps glibc's arenas for threads started from now on; False where the C library is not glibc (musl, macOS)."""
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 — only glibc has it, and only glibc's mallopt knows M_ARENA_MAX
    except (OSError, AttributeError, TypeError):
        return False
    if mallopt(_M_ARENA_MAX, count) != 1:
        log.warning('could not limit the C heap to %d arenas', count)
        return False
    return True
