"""Background work yields the CPU to recording: VR_BACKGROUND_PRIORITY lowers the transcript workers (niceness, and
SCHED_IDLE for `idle`) and the ffmpeg runs nobody waits on at once (waveforms, MP3 copies)."""

import os
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO

import pytest

from services.audio.ffmpeg import run_ffmpeg
from services.container import build_services
from services.core.config import Settings
from services.core.priority import BackgroundPriority, database_priority, in_new_thread, lower_priority


@pytest.fixture
def sleeper() -> Iterator[int]:
    process = subprocess.Popen(['sleep', '30'])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ('priority', 'niceness', 'policy'),
    [('idle', 10, os.SCHED_IDLE), ('low', 10, os.SCHED_OTHER), ('normal', 0, os.SCHED_OTHER)],
)
def test_each_priority_lowers_a_process_as_it_says(
    sleeper: int, priority: BackgroundPriority, niceness: int, policy: int
) -> None:
    lower_priority(priority, 10, sleeper)
    assert (os.getpriority(os.PRIO_PROCESS, sleeper), os.sched_getscheduler(sleeper)) == (niceness, policy)


def test_a_priority_is_set_not_added_and_never_raised(sleeper: int) -> None:
    lower_priority('low', 10, sleeper)
    lower_priority('low', 10, sleeper)
    assert os.getpriority(os.PRIO_PROCESS, sleeper) == 10, 'not 20: set, not added'
    lower_priority('low', 5, sleeper)
    assert os.getpriority(os.PRIO_PROCESS, sleeper) == 10, 'a lower niceness asked later does not raise it'


def test_a_process_that_ended_is_no_error() -> None:
    process = subprocess.Popen(['true'])
    process.wait()
    lower_priority('idle', 10, process.pid)


def own_policy() -> tuple[int, int]:
    """The calling thread's scheduling policy and niceness (on Linux, pid 0 is the calling thread for both)."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def test_work_on_a_lowered_thread_and_what_it_starts_get_its_priority_and_the_caller_keeps_its_own() -> None:
    """How a worker loads its model: the model's threads are made as it loads, and inherit the loading thread's."""

    def policy_of_a_thread_started_here() -> tuple[int, int]:
        seen: list[tuple[int, int]] = []
        started = threading.Thread(
            target=lambda: seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))
        )
        started.start()
        started.join()
        return seen[0]

    assert in_new_thread(policy_of_a_thread_started_here, partial(lower_priority, 'idle', 10)) == (os.SCHED_IDLE, 10)
    assert own_policy() == (os.SCHED_OTHER, 0), 'the caller'
    with pytest.raises(ZeroDivisionError):
        in_new_thread(lambda: 1 // 0, None)


def test_database_threads_are_never_idle() -> None:
    assert [database_priority(p) for p in ('idle', 'low', 'normal')] == ['low', 'low', 'normal']


def test_background_ffmpeg_runs_below_the_process_that_starts_it() -> None:
    """`run_ffmpeg` with a niceness lowers its child; the child reports its own niceness once it is set."""
    heard: list[bytes] = []

    def read(stream: IO[bytes]) -> None:
        heard.append(stream.read())

    command = ['sh', '-c', 'sleep 0.5; nice']
    assert run_ffmpeg(command, timeout_s=10, read_output=read, niceness=19).returncode == 0
    assert int(heard[0]) == 19
    heard.clear()
    run_ffmpeg(command, timeout_s=10, read_output=read)
    assert int(heard[0]) == os.getpriority(os.PRIO_PROCESS, 0), 'without one, the same as its parent'


@pytest.mark.parametrize(('priority', 'niceness'), [('idle', 19), ('low', 19), ('normal', 0)])
def test_waveforms_and_mp3_copies_take_the_setting(tmp_path: Path, priority: BackgroundPriority, niceness: int) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, secret='x' * 32, transcribe=False, background_priority=priority
    )
    services = build_services(settings)
    try:
        assert (services.waveforms.niceness, services.exports.niceness) == (niceness, niceness)
    finally:
        services.close()
