"""One table for every benchmark, printed and written to bench/results.md with the machine it ran on."""

import os
import platform
import statistics
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


def write(rows: list[Row], *, mode: str, elapsed_s: float, notes: list[str], load_at_start: str) -> Path:
    """A full run is the report (results.md, committed), a soak has its own (soak.md, committed); a quick or
    partial run goes beside them, ignored by git."""
    path = HERE / {'full': 'results.md', 'soak': 'soak.md'}.get(mode, 'results-partial.md')
    parts = [
        '# Benchmark results',
        '',
        f'{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {mode} run, {elapsed_s / 60:.1f} minutes.',
        f'Machine: {machine()}; load average at the start {load_at_start}.',
        'Everything on loopback; the load generator shares these cores with the server. CPU % is of one core.',
        '',
        table(rows),
        '',
        *(f'- {note}' for note in notes),
        '',
    ]
    path.write_text('\n'.join(parts))
    return path
