"""1b and 1c. Ingest scaled out on one box: two app instances behind HAProxy and one Redis, all on the same 2 cores,
sharing either the production stack (PostgreSQL + a SeaweedFS bucket, 1b) or the embedded defaults (one SQLite file
and one local audio folder in one data dir, 1c): what the box serves when both cores run the app. The load and the
loss check are ingest's; the recorders reach the instances only through HAProxy.
"""

import contextlib
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from bench import identities
from bench.audio import live_webm, split
from bench.load import LoadResult, count_lost, run_load
from bench.report import Row
from bench.servers import BENCH_SECRET, app_server, pid_of
from services.core.config import Settings
from tests.support.app_server import AppServer, tracebacks
from tests.support.load_balancer import COOKIE, LoadBalancer
from tests.support.postgres_server import PostgresServer
from tests.support.redis_server import RedisServer
from tests.support.s3_server import CREDENTIALS, REGION, S3Server

LEVELS = (200, 500, 1000)
QUICK_LEVELS = (50,)
STOP_P99_MS = 1000.0
SATURATION_RECORDERS = 50
INSTANCES = ('app1', 'app2')  # the names docs/haproxy.cfg and its sticky cookie give them
COMPARE = 'compare 1 ingest: one instance on SQLite and local disk'
# HAProxy's httplog line: ... apps/<server> timers status bytes req-cookie res-cookie <termination state> ... "request"
_LOGGED = re.compile(r' apps/(\w+) \S+ \d+ \d+ \S+ \S+ (\S{4}) .*"GET (\S+)')


class Backing(Protocol):
    """The parts both instances share; they live for a whole figure, so identities and audio outlive each crash."""

    def data_dir(self, instance: Path) -> Path:
        """The data dir of the instance whose own folder (NiceGUI storage) is `instance`."""
        ...

    def app_env(self) -> dict[str, str]:
        """The same for both instances (the secret comes from app_server)."""
        ...

    def checker_settings(self, folder: Path) -> Settings:
        """Where the loss check looks up acknowledged chunks: the durable copy, never a cache."""
        ...

    def pids(self) -> dict[str, int]:
        """Each shared part's process, measured with its children as 'other parts'."""
        ...


@dataclass(frozen=True)
class Stack:
    """One figure: how its rows are labelled and what its instances share."""

    benchmark: str
    note: str
    folder: str
    backing: Callable[[Path], AbstractContextManager[Backing]]


@dataclass
class ProductionBacking:
    """One PostgreSQL, one SeaweedFS bucket and one Redis; each instance keeps its own data dir (its S3 spool), as
    on two machines."""

    postgres: PostgresServer
    s3: S3Server
    redis: RedisServer
    database_url: str
    bucket: str

    def data_dir(self, instance: Path) -> Path:
        return instance / 'data'

    def app_env(self) -> dict[str, str]:
        """As in tests/test_load_balancer.py: one database, bucket, Redis and secret."""
        return {
            'VR_DATABASE_URL': self.database_url,
            'VR_STORAGE': 's3',
            'VR_S3_BUCKET': self.bucket,
            'VR_S3_ENDPOINT_URL': self.s3.url,
            'VR_S3_REGION': REGION,
            'VR_S3_PATH_STYLE': 'true',
            'VR_S3_CREATE_BUCKET': 'true',
            **_balanced_env(self.redis),
        }

    def checker_settings(self, folder: Path) -> Settings:
        """The bucket itself, never an instance's local spool (a cache, not the durable copy)."""
        return Settings(
            _env_file=None,
            data_dir=folder / 'checker',
            secret=BENCH_SECRET,
            database_url=self.database_url,
            auto_migrate=False,
            storage='s3',
            s3_bucket=self.bucket,
            s3_endpoint_url=self.s3.url,
            s3_region=REGION,
            s3_path_style=True,
            s3_spool=False,
        )

    def pids(self) -> dict[str, int]:
        postmaster = int((self.postgres.data / 'postmaster.pid').read_text().split()[0])
        assert self.s3.process
        return {'PostgreSQL': postmaster, 'SeaweedFS': self.s3.process.pid, **_redis_pid(self.redis)}


@dataclass
class SharedFolderBacking:
    """The embedded defaults shared: one data dir, so one SQLite file (WAL, several processes) and one local audio
    folder; only Redis runs beside them, for NiceGUI's browser storage. Its `tmp` is shared too (unique temp names)
    and `spool` and `secret.key` go unused (local storage, VR_SECRET set)."""

    redis: RedisServer
    shared: Path

    def data_dir(self, instance: Path) -> Path:
        return self.shared

    def app_env(self) -> dict[str, str]:
        return {'VR_STORAGE': 'local', **_balanced_env(self.redis)}

    def checker_settings(self, folder: Path) -> Settings:
        return Settings(_env_file=None, data_dir=self.shared, secret=BENCH_SECRET, auto_migrate=False)

    def pids(self) -> dict[str, int]:
        return _redis_pid(self.redis)


@dataclass
class Tier:
    apps: tuple[AppServer, AppServer]
    balancer: LoadBalancer


@dataclass
class Measured:
    result: LoadResult
    lost: int
    websockets: Counter[str]  # instance -> websockets HAProxy sent there
    unsticky: int  # websockets that did not carry a valid sticky cookie
    log_errors: int  # ERROR or CRITICAL lines in the instances' logs
    log_tracebacks: int


def run(
    workspace: Path, *, quick: bool, say: Callable[[str], None], levels: Sequence[int] | None = None
) -> Iterator[Row]:
    """`levels` overrides the recorder counts (e.g. one level of 200 to try it out); each row is yielded as it is
    measured."""
    chunks = split(live_webm(workspace, 60))
    levels = levels or (QUICK_LEVELS if quick else LEVELS)
    duration_s = 6.0 if quick else 20.0
    for stack in STACKS:
        yield from _figure(stack, workspace, chunks, levels, duration_s, say)


def _figure(
    stack: Stack,
    workspace: Path,
    chunks: list[bytes],
    levels: Sequence[int],
    duration_s: float,
    say: Callable[[str], None],
) -> Iterator[Row]:
    """One stack's rows: its identities, each level until p99 passes the limit, then the closed-loop maximum."""
    folder = workspace / stack.folder
    folder.mkdir(parents=True, exist_ok=True)
    say(f'{stack.folder}: {stack.note}')
    with stack.backing(folder) as backing:
        count = max(*levels, SATURATION_RECORDERS)
        say(f'{stack.folder}: signing in {count} browsers through HAProxy and /onboard')
        with _tier(folder, backing, 'onboard', crash=False) as tier:
            browsers = identities.ensure(folder, count, base_url=tier.balancer.url)
        yield from _level_rows(stack, folder, backing, browsers, chunks, levels, duration_s, say)
        say(f'{stack.folder}: saturation, {SATURATION_RECORDERS} recorders sending back to back')
        saturated = _level(folder, backing, browsers[:SATURATION_RECORDERS], chunks, duration_s / 2, closed_loop=True)
    label = f'max throughput ({SATURATION_RECORDERS} recorders, closed loop)'
    closed = 'each recorder sends its next chunk as soon as the last is acknowledged'
    yield Row(stack.benchmark, label, _saturation_text(saturated), '', f'{stack.note}; {closed}; {COMPARE}')


def _level_rows(
    stack: Stack,
    folder: Path,
    backing: Backing,
    browsers: list[str],
    chunks: list[bytes],
    levels: Sequence[int],
    duration_s: float,
    say: Callable[[str], None],
) -> Iterator[Row]:
    """Open loop, 1 chunk/s per recorder; stops at the first level past STOP_P99_MS or with recorders not started."""
    for n in levels:
        say(f'{stack.folder}: {n} recorders for {duration_s:.0f} s through HAProxy to 2 instances')
        measured = _level(folder, backing, browsers[:n], chunks, duration_s)
        note = f'{stack.note}; {COMPARE}'
        yield Row(stack.benchmark, f'{n} recorders × 1 chunk/s', _level_text(measured), '', note)
        if measured.result.p99_ms > STOP_P99_MS or measured.result.recorders < n:
            why = f'p99 past {STOP_P99_MS:.0f} ms' if measured.result.p99_ms > STOP_P99_MS else 'not all started'
            yield Row(stack.benchmark, f'> {n} recorders', 'not run', '', f'stopped: {why}')
            break


def _level(
    folder: Path,
    backing: Backing,
    browsers: list[str],
    chunks: list[bytes],
    duration_s: float,
    closed_loop: bool = False,
) -> Measured:
    """Fresh instances and balancer for each level, ended with SIGKILL of both instances; then every acknowledged
    chunk is looked up where the backing keeps it durably."""
    label = f'{len(browsers)}-{"closed" if closed_loop else "open"}'
    with _tier(folder, backing, label, crash=True) as tier:
        assert tier.balancer.process
        result = run_load(
            tier.balancer.url,
            [pid_of(app) for app in tier.apps],
            bare=False,
            identities=browsers,
            chunks=chunks,
            duration_s=duration_s,
            closed_loop=closed_loop,
            support_pids={**backing.pids(), 'HAProxy': tier.balancer.process.pid},
        )
    lost = count_lost(folder, result.acked_seqs, backing.checker_settings(folder))
    websockets, unsticky = _websockets(tier.balancer.log_path)
    logs = [app.log_path.read_text(errors='replace') for app in tier.apps]
    errors = sum(1 for log in logs for line in log.splitlines() if ' ERROR ' in line or ' CRITICAL ' in line)
    return Measured(result, lost, websockets, unsticky, errors, sum(len(tracebacks(log)) for log in logs))


def _balanced_env(redis: RedisServer) -> dict[str, str]:
    """What any instance behind HAProxy needs: NiceGUI's browser storage (the sign-ins) in the shared Redis, and the
    client address from the X-Forwarded-For HAProxy appends to."""
    return {'NICEGUI_REDIS_URL': redis.url, 'VR_TRUSTED_PROXY_COUNT': '1'}


def _redis_pid(redis: RedisServer) -> dict[str, int]:
    assert redis.process
    return {'Redis': redis.process.pid}


@contextlib.contextmanager
def _aws_credentials() -> Iterator[None]:
    """SeaweedFS's fixed keys in this process's environment for the run: the instances inherit them and the loss
    check here finds them, both through the AWS chain as a deployment would; nothing looks off this machine."""
    values = {**CREDENTIALS, 'AWS_EC2_METADATA_DISABLED': 'true'}
    dropped = ('AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3')
    saved = {name: os.environ.get(name) for name in [*values, *dropped]}
    os.environ.update(values)
    for name in dropped:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _redis(folder: Path) -> Iterator[RedisServer]:
    redis = RedisServer(folder / 'redis')
    try:
        yield redis.start()
    finally:
        redis.stop()


@contextlib.contextmanager
def _production(folder: Path) -> Iterator[Backing]:
    postgres, s3 = PostgresServer(), S3Server(folder / 'seaweedfs.log')
    with _aws_credentials(), _redis(folder) as redis:
        try:
            postgres.start()
            s3.start()
            database_url = postgres.url(postgres.create_database())
            yield ProductionBacking(postgres, s3, redis, database_url, f'vr-bench-{uuid.uuid4().hex[:12]}')
        finally:
            s3.stop()
            postgres.stop()


@contextlib.contextmanager
def _shared_folder(folder: Path) -> Iterator[Backing]:
    with _redis(folder) as redis:
        yield SharedFolderBacking(redis, folder / 'data')


STACKS = (
    Stack(
        '1b ingest, 2 instances',
        '2 app instances + PostgreSQL + SeaweedFS + Redis + HAProxy on the same 2 cores',
        'scale-out',
        _production,
    ),
    Stack(
        '1c ingest, 2 instances, one data folder',
        '2 app instances on one SQLite file and one local folder + Redis + HAProxy on the same 2 cores',
        'scale-out-sqlite',
        _shared_folder,
    ),
)


@contextlib.contextmanager
def _tier(folder: Path, backing: Backing, label: str, *, crash: bool) -> Iterator[Tier]:
    """Two instances (each its own NiceGUI folder and log; the data dir as the backing says) behind a new HAProxy;
    `crash` ends them with SIGKILL, else gracefully (NiceGUI then has written every browser's storage to Redis)."""
    apps = (_instance(folder, backing, INSTANCES[0]), _instance(folder, backing, INSTANCES[1]))
    balancer = LoadBalancer(apps, folder / f'haproxy-{label}.log')
    try:
        with ThreadPoolExecutor(2) as pool:  # together, as a deployment starts them: one of them migrates
            list(pool.map(AppServer.start, apps))
        balancer.start()
        _wait_for_both(balancer)
        yield Tier(apps, balancer)
    finally:
        for app in apps:
            if crash:
                app.kill()
            else:
                app.stop()
        balancer.stop()


def _instance(folder: Path, backing: Backing, name: str) -> AppServer:
    return app_server(folder / name, backing.data_dir(folder / name), **backing.app_env())


def _wait_for_both(balancer: LoadBalancer, timeout_s: float = 20) -> None:
    """Until HAProxy has sent a request to each instance: its sticky cookie on the answer names the instance."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while seen != set(INSTANCES):
        if time.monotonic() > deadline:
            raise RuntimeError(f'HAProxy reached only {sorted(seen)} in {timeout_s} s:\n{balancer.log()}')
        answer = httpx.get(f'{balancer.url}/api/healthz', timeout=5)
        for header in answer.headers.get_list('set-cookie'):
            name, _, rest = header.partition('=')
            if name.strip() == COOKIE:
                seen.add(rest.split(';')[0])
        time.sleep(0.05)


def _websockets(log_path: Path) -> tuple[Counter[str], int]:
    """From HAProxy's log: how many websockets each instance got, and how many came without a valid sticky cookie
    (the termination state's third letter is the client's cookie: V = valid)."""
    per_instance: Counter[str] = Counter()
    unsticky = 0
    for line in log_path.read_text(errors='replace').splitlines():
        logged = _LOGGED.search(line)
        if logged and logged.group(3).startswith('/_nicegui_ws/'):
            per_instance[logged.group(1)] += 1
            unsticky += logged.group(2)[2] != 'V'
    return per_instance, unsticky


def _cpu_text(result: LoadResult) -> str:
    instances = ' + '.join(f'{name} {pct:.0f} %' for name, pct in zip(INSTANCES, result.server_cpu_pcts, strict=True))
    parts = ', '.join(f'{name} {pct:.0f}' for name, pct in result.support_cpu_pcts.items())
    return (
        f'CPU {instances} = **{result.server_cpu_pct:.0f} %**, other parts '
        f'{sum(result.support_cpu_pcts.values()):.0f} % ({parts})'
    )


def _failures_text(measured: Measured) -> str:
    result = measured.result
    dropped = f' ({result.disconnected} on dropped websockets)' if result.disconnected else ''
    refusals = ', '.join(f'{times}× {reason}' for reason, times in result.refusals.items())
    refused = f' (answers other than ok: {refusals})' if refusals else ''
    did_not_start = f', {len(result.setup_failures)} did not start' if result.setup_failures else ''
    logs = (
        f'**app logs: {measured.log_errors} ERROR lines, {measured.log_tracebacks} tracebacks**'
        if measured.log_errors or measured.log_tracebacks
        else 'app logs clean'
    )
    unacknowledged = f'{result.failed} unacknowledged after the run{dropped}{refused}{did_not_start}'
    return f'**{measured.lost} lost**, {unacknowledged}; {logs}'


def _spread_text(measured: Measured) -> str:
    spread = '/'.join(str(measured.websockets[name]) for name in INSTANCES)
    sticky = 'all sticky' if not measured.unsticky else f'**{measured.unsticky} not sticky**'
    return f'websockets {"/".join(INSTANCES)} {spread}, {sticky}'


def _level_text(measured: Measured) -> str:
    result = measured.result
    rss = ' + '.join(f'{mb:.0f}' for mb in result.server_rss_mbs)
    return (
        f'p50 **{result.p50_ms:.1f}** / p99 **{result.p99_ms:.0f} ms**; {_failures_text(measured)}; '
        f'{_cpu_text(result)}; RSS {rss} MB; {result.throughput:.0f} chunks/s; '
        f'generator CPU {result.generator_cpu_pct:.0f} %, send lag p99 {result.send_lag_p99_ms:.0f} ms; '
        f'other processes {result.other_cpu_pct:.0f} %; {_spread_text(measured)}'
    )


def _saturation_text(measured: Measured) -> str:
    result = measured.result
    return (
        f'**{result.throughput:.0f} chunks/s**; p50 {result.p50_ms:.1f} / p99 {result.p99_ms:.0f} ms; '
        f'{_failures_text(measured)}; {_cpu_text(result)}; generator CPU {result.generator_cpu_pct:.0f} %; '
        f'other processes {result.other_cpu_pct:.0f} %; {_spread_text(measured)}'
    )
