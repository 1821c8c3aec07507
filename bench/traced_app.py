"""The app (main.py) under tracemalloc, to find what grows: each SIGUSR2 writes a snapshot to the folder
`VR_BENCH_SNAPSHOTS` names (0.snapshot, 1.snapshot, ...). Only the memory benchmark runs it: tracing slows every
allocation, so its latencies are not the app's."""

import itertools
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from bench/, import the app

FRAMES = 5  # enough to see which of the app's calls made a block that stays; more slows the app past its load


def main() -> None:
    tracemalloc.start(FRAMES)
    folder = Path(os.environ['VR_BENCH_SNAPSHOTS'])
    folder.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count()

    def write_snapshot(_signal: int, _frame: FrameType | None) -> None:
        path = folder / f'{next(numbers)}.snapshot'
        tracemalloc.take_snapshot().dump(str(path.with_suffix('.part')))
        path.with_suffix('.part').rename(path)  # whole, or not there

    signal.signal(signal.SIGUSR2, write_snapshot)
    import main as app

    app.main()


if __name__ == '__main__':
    main()
