"""How background work yields the CPU to recording: one setting, `VR_BACKGROUND_PRIORITY`, for the transcript workers
and for the ffmpeg runs nobody is waiting on at that moment (waveforms, MP3 copies).

- `idle` (the default): the workers run under Linux's SCHED_IDLE besides their niceness, so they get the CPU only
  when nothing else wants it; a chunk's acknowledgement never waits behind Whisper. On a server that is busy all the
  time they may fall behind for as long as it is.
- `low`: niceness only. The workers still get a share of a busy CPU (measured: about a quarter of a core).
- `normal`: nothing is lowered.

Only the compute goes under SCHED_IDLE: the threads that hear audio (and what they start: CTranslate2's threads,
ffmpeg). The threads that write to the database keep the niceness alone. A SCHED_IDLE thread preempted while it
holds SQLite's write lock (a commit and its fsync) would hold up every chunk the web process commits until the CPU
is idle, which under load is a long wait: priority inversion.
"""

import logging
import os
import threading
from collections.abc import Callable
from typing import Literal, TypeVar

log = logging.getLogger(__name__)
BackgroundPriority = Literal['idle', 'low', 'normal']
BACKGROUND_FFMPEG_NICENESS = 19
T = TypeVar('T')


def lower_priority(priority: BackgroundPriority, niceness: int, pid: int = 0) -> None:
    """Process `pid` (0: this one) at `niceness` and, for `idle`, under SCHED_IDLE; its threads and the children it
    starts afterwards inherit both. Set rather than added (os.nice adds up), and never raised."""
    if priority == 'normal':
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, pid) < niceness:
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
        if priority == 'idle' and hasattr(os, 'SCHED_IDLE'):
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except ProcessLookupError:  # pid 0 is the calling thread: on Linux both calls set a thread's own
        pass  # it has ended already
    except OSError:
        log.warning('could not lower the priority of process %s', pid or os.getpid())


def background_ffmpeg_niceness(priority: BackgroundPriority) -> int:
    """Waveform decodes and MP3 encodes: niceness, never SCHED_IDLE (someone may be waiting for an MP3)."""
    return 0 if priority == 'normal' else BACKGROUND_FFMPEG_NICENESS


def database_priority(priority: BackgroundPriority) -> BackgroundPriority:
    """What a worker's database threads get when its compute gets `priority`: never SCHED_IDLE."""
    return 'low' if priority == 'idle' else priority


def in_new_thread(work: Callable[[], T], first: Callable[[], None] | None) -> T:
    """`work()` on a new thread that calls `first` (lowers itself) before, so the threads and processes `work` starts
    inherit its priority (a model's compute threads are made when it loads)."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if first is not None:
                first()
            result.append(work())
        except BaseException as error:  # handed to the caller
            failure.append(error)

    thread = threading.Thread(target=run, name='lowered')
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
