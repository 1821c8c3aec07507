"""What grew in the web process between two tracemalloc snapshots of bench/traced_app.py, by the line that
allocated it and by the app's call that led there; the details go to bench/memory.md, the top lines to the table."""

import os
import signal
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

from bench.report import Row
from bench.traced_app import FRAMES

MEMORY_FILE = Path(__file__).parent / 'memory.md'
TOP_LINES = 25
TOP_TRACES = 8
WRITE_WAIT_S = 300.0  # a snapshot of a few hundred MB of small blocks takes a while to write
UNTRACED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, '<frozen importlib._bootstrap>'),
    tracemalloc.Filter(False, '<frozen importlib._bootstrap_external>'),
    tracemalloc.Filter(False, '<unknown>'),
)
ROOT = str(Path(__file__).resolve().parent.parent)


def snapshot_after(process: psutil.Process, folder: Path, seconds: float, done: threading.Event) -> None:
    if not done.wait(seconds):
        snapshot_now(process, folder)


def snapshot_now(process: psutil.Process, folder: Path) -> None:
    """Asks the traced app for a snapshot and waits until it is written (before the app is killed, say)."""
    written = len(list(folder.glob('*.snapshot')))
    os.kill(process.pid, signal.SIGUSR2)
    deadline = time.monotonic() + WRITE_WAIT_S
    while len(list(folder.glob('*.snapshot'))) == written and time.monotonic() < deadline:
        time.sleep(0.5)


def report(folder: Path, start_s: float, seconds: int) -> Row:
    """Compares the first and the last snapshot in `folder`."""
    paths = sorted(folder.glob('*.snapshot'), key=lambda path: int(path.stem))
    if len(paths) < 2:
        return Row('10 day', 'memory traced', f'{len(paths)} snapshots written, 2 needed', '', '')
    first, last = (tracemalloc.Snapshot.load(str(path)).filter_traces(UNTRACED) for path in (paths[0], paths[-1]))
    by_line = last.compare_to(first, 'lineno')
    by_trace = last.compare_to(first, 'traceback')
    grown = sum(stat.size_diff for stat in by_line)
    lines = [f'- {stat.size_diff / 1024:+,.0f} KiB in {stat.count_diff:+,} blocks: {_where(stat)}' for stat in by_line]
    traces = [
        f'### {stat.size_diff / 1024:+,.0f} KiB in {stat.count_diff:+,} blocks\n```\n'
        + '\n'.join(line for line in stat.traceback.format() if line.strip())
        + '\n```'
        for stat in by_trace[:TOP_TRACES]
    ]
    MEMORY_FILE.write_text(
        f'# What grew in the web process\n\nThe day benchmark under tracemalloc (each block traced to {FRAMES} '
        f'frames), snapshots at minute {start_s / 60:.0f} and {seconds / 60:.0f}: Python allocations grew '
        f'{grown / 2**20:+.1f} MiB.\n\n'
        f'## By line\n\n' + '\n'.join(lines[:TOP_LINES]) + '\n\n## By call path\n\n' + '\n\n'.join(traces) + '\n'
    )
    return Row(
        '10 day',
        f'memory traced from minute {start_s / 60:.0f} to {seconds / 60:.0f} (tracemalloc: its latencies are not the '
        "app's)",
        f'Python allocations {grown / 2**20:+.1f} MiB',
        '',
        'most: ' + '; '.join(line.removeprefix('- ') for line in lines[:3]) + '; the rest in bench/memory.md',
    )


def _where(stat: tracemalloc.StatisticDiff) -> str:
    frame = stat.traceback[0]
    return f'{frame.filename.replace(ROOT + "/", "")}:{frame.lineno}'
