"""The web process keeps glibc's C heap in two arenas (services/core/memory.py), so freed memory is not scattered
over one arena per thread and the resident size stays flat: checked on a real app process, beside a control showing
that threads do make arenas of their own without the cap (so the count below can see it)."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.core.memory import WEB_PROCESS_ARENAS
from tests.support.app_server import AppServer

HEAP_SPAN = 64 * 2**20  # each glibc arena but the main one lives in heaps reserved at this size and alignment
BUSY_THREADS = """
import sys, threading
from services.core.memory import limit_malloc_arenas
if sys.argv[1] == 'capped':
    assert limit_malloc_arenas()
def work():
    kept = [bytearray(size) for size in range(600, 60_000, 600)]  # above pymalloc's 512 bytes: glibc's malloc
    allocated.release()
    done.wait()
done, allocated = threading.Event(), threading.Semaphore(0)
threads = [threading.Thread(target=work) for _ in range(32)]
for thread in threads: thread.start()
for thread in threads: allocated.acquire()  # every thread has its memory before the map is read
print(open('/proc/self/maps').read(), flush=True)
done.set()
"""


def arena_heaps(maps: str) -> int:
    """Heaps of glibc's extra arenas in a /proc/PID/maps text: an anonymous read-write mapping at an address aligned
    to HEAP_SPAN whose reservation (itself, or with the inaccessible rest after it) ends HEAP_SPAN later."""
    regions = []
    for line in maps.splitlines():
        fields = line.split()
        if len(fields) != 5:  # a file, the stack, the main heap: named
            continue
        start, end = (int(bound, 16) for bound in fields[0].split('-'))
        regions.append((start, end, fields[1]))
    heaps = 0
    for (start, end, mode), following in zip(regions, [*regions[1:], (0, 0, '')], strict=True):
        if start % HEAP_SPAN or mode != 'rw-p':
            continue
        reserved_to = following[1] if following[0] == end and following[2] == '---p' else end
        heaps += reserved_to == start + HEAP_SPAN
    return heaps


@pytest.mark.parametrize(('mode', 'most'), [('uncapped', None), ('capped', WEB_PROCESS_ARENAS - 1)])
def test_busy_threads_make_arenas_of_their_own_unless_capped(mode: str, most: int | None) -> None:
    root = Path(__file__).resolve().parent.parent
    maps = subprocess.run(
        [sys.executable, '-c', BUSY_THREADS, mode], cwd=root, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    heaps = arena_heaps(maps)
    if most is None:
        assert heaps > WEB_PROCESS_ARENAS, f'32 threads made only {heaps} extra arenas: the count cannot see a cap'
    else:
        assert heaps <= most


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AppServer]:
    running = AppServer(tmp_path / 'data').start()
    yield running
    running.stop()


def test_the_web_process_keeps_its_heap_in_two_arenas(server: AppServer) -> None:
    with httpx.Client(base_url=server.url) as client:  # a page and the API: the thread pools have worked
        client.get('/onboard').raise_for_status()
        client.get('/api/healthz').raise_for_status()
    assert server.process is not None
    maps = Path(f'/proc/{server.process.pid}/maps').read_text()
    assert arena_heaps(maps) <= WEB_PROCESS_ARENAS - 1
