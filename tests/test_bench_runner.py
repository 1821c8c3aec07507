"""`make bench` as a newcomer runs it: what is missing is said in one line before the first measurement, and each
row reaches the results file as it is measured, so a benchmark that fails costs only the rows after it."""

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import bench.__main__ as runner
from bench import parts
from bench.report import ResultsFile, Row
from tests.support.app_server import ROOT


def test_each_row_is_in_the_file_as_soon_as_it_is_measured_and_a_failure_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = ResultsFile(mode='partial', notes=['a note'], load_at_start='0.00', folder=tmp_path)
    seen_before_the_failure: list[str] = []

    def breaks_midway(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> Iterator[Row]:
        yield Row('1 ingest', '50 recorders', 'p99 12 ms')
        seen_before_the_failure.append(results.path.read_text())
        raise RuntimeError('redis-server is not installed')

    def after_it(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
        return [Row('2 finalize', '1 min', '0.29 s')]

    monkeypatch.setattr(runner, 'BENCHMARKS', {'ingest': breaks_midway, 'finalize': after_it})
    options = argparse.Namespace(quick=True)
    failed = runner.run_all(['ingest', 'finalize'], results, tmp_path, options)

    assert failed == ['ingest']
    (midway,) = seen_before_the_failure
    assert '| 1 ingest | 50 recorders | p99 12 ms |' in midway and 'in progress: 1 rows so far' in midway
    written = results.path.read_text()
    assert '| 1 ingest | 50 recorders | p99 12 ms |' in written
    assert '| ingest | stopped | failed |  | RuntimeError: redis-server is not installed |' in written
    assert '| 2 finalize | 1 min | 0.29 s |' in written, 'the benchmarks after a failure still run'
    results.write('stopped: ingest failed')
    assert 'partial run, stopped: ingest failed' in results.path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ['results-partial.md'], 'written whole, through a temp name'


def test_every_benchmark_names_its_parts_and_this_machine_has_them() -> None:
    assert set(runner.BENCHMARKS) <= set(parts.NEEDS), 'a new benchmark lists what it runs besides the app'
    assert parts.missing(list(runner.BENCHMARKS)) == []  # `make test` installed them, as `make bench` does


def test_missing_parts_are_said_in_one_line_before_anything_is_measured(tmp_path: Path) -> None:
    absent = parts.program('vr-no-such-program', 'vr-package')
    here = parts.program(Path(sys.executable).name)
    assert parts.missing(['a', 'b'], {'a': (absent, here), 'b': (absent,)}) == [absent]

    without_programs = {**os.environ, 'PATH': str(tmp_path)}  # no redis-server, haproxy… on the PATH
    started = subprocess.run(
        [sys.executable, '-m', 'bench', '--only', 'scale_out', '--only', 'ingest'],
        cwd=ROOT,
        env=without_programs,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 1
    (line,) = started.stderr.strip().splitlines()
    assert line.startswith('cannot start the benchmarks, missing: '), line
    assert 'redis-server (redis-server)' in line and 'haproxy (haproxy)' in line
    assert line.endswith("'sudo apt-get install haproxy redis-server'"), line
    assert 'workspace' not in started.stdout, 'stopped before the first measurement'
