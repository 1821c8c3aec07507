"""One table for every benchmark, printed and written to bench/results.md with the machine it ran on."""

import os
import platform
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Row:
    benchmark: str
    case: str
    result: str
    baseline: str = ''
    note: str = ''


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values, so a missing figure never reads as zero."""
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float('nan')


def machine() -> str:
    memory_gib = psutil.virtual_memory().total / 1024**3
    return (
        f'{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {memory_gib:.1f} GiB memory, '
        f'{platform.system()} {platform.release()}, Python {platform.python_version()}'
    )


def table(rows: list[Row]) -> str:
    lines = ['| benchmark | case | result | baseline (same run) | note |', '|---|---|---|---|---|']
    lines += [f'| {r.benchmark} | {r.case} | {r.result} | {r.baseline} | {r.note} |' for r in rows]
    return '\n'.join(lines)


def load_average() -> str:
    return ' / '.join(f'{value:.2f}' for value in os.getloadavg())


class ResultsFile:
    """The report, written again after every row, so a benchmark that fails later costs only the rows after it.

    A full run is the report (results.md, committed), a soak has its own (soak.md, committed); a quick or partial
    run goes beside them, ignored by git. Until the run ends, its header says how far it got.
    """

    def __init__(self, *, mode: str, notes: list[str], load_at_start: str, folder: Path = HERE) -> None:
        self.path = folder / {'full': 'results.md', 'soak': 'soak.md'}.get(mode, 'results-partial.md')
        self.mode, self.notes, self.load_at_start = mode, notes, load_at_start
        self.rows: list[Row] = []
        self.started = time.monotonic()

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.write(f'in progress: {len(self.rows)} rows so far')

    def write(self, state: str) -> Path:
        """`state`: how far the run got ('in progress…', 'stopped: why'), or '' once it is complete."""
        minutes = (time.monotonic() - self.started) / 60
        run = (
            f'{self.mode} run, {state}, {minutes:.1f} minutes so far'
            if state
            else f'{self.mode} run, {minutes:.1f} minutes'
        )
        parts = [
            '# Benchmark results',
            '',
            f'{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {run}.',
            f'Machine: {machine()}; load average at the start {self.load_at_start}.',
            'Everything on loopback; the load generator shares these cores with the server. CPU % is of one core.',
            '',
            table(self.rows),
            '',
            *(f'- {note}' for note in self.notes),
            '',
        ]
        temp = self.path.with_name(f'.{self.path.name}.writing')
        temp.write_text('\n'.join(parts))
        temp.replace(self.path)  # a reader (or a crash) never sees half a table
        return self.path


def write(rows: list[Row], *, mode: str, elapsed_s: float, notes: list[str], load_at_start: str) -> Path:
    """The whole report at once, for a caller that has all its rows."""
    results = ResultsFile(mode=mode, notes=notes, load_at_start=load_at_start)
    results.rows, results.started = list(rows), time.monotonic() - elapsed_s
    return results.write('')
