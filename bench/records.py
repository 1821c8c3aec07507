"""4. The records page and the list API for a user with 10,000 recordings: time for the first page.

Baseline: the same two requests for a user with exactly one page (50) of recordings, so the difference is what
the other 9,950 rows cost.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlmodel import select

from bench.finalize import open_services
from bench.page_client import connect, load_page, onboard
from bench.report import Row, median, percentile
from bench.servers import app_server
from services.core.models import Recording, RecordingStatus, User

MANY = 10_000
ONE_PAGE = 50
REQUESTS = 30
QUICK_REQUESTS = 10


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    say(f'records: seeding users with {MANY} and {ONE_PAGE} recordings')
    server = app_server(workspace).start()
    try:
        users = {size: _users(workspace, server.url, size) for size in (MANY, ONE_PAGE)}
    finally:
        server.stop()
    for size, (page_user, api_user, _token, _cookie) in users.items():
        _seed(workspace, page_user, size)
        _seed(workspace, api_user, size)
    count = QUICK_REQUESTS if quick else REQUESTS
    server = app_server(workspace).start()
    try:
        timings = {size: _time_requests(server.url, *users[size], count) for size in (MANY, ONE_PAGE)}
    finally:
        server.stop()
    rows = []
    for name, case in (('api', 'GET /api/records/{user_id}, first page of 50'), ('page', '/records page: list shown')):
        ours, base = timings[MANY][name], timings[ONE_PAGE][name]
        in_html = sum(timings[MANY]['in_html'])
        note = 'goal ≤ 100 ms' + (
            f'; the list was in the first HTML {in_html:.0f}/{count} times' if name == 'page' else ''
        )
        rows.append(
            Row(
                '4 records',
                f'{case}, {MANY:,} recordings',
                f'median **{median(ours):.1f} ms**, p95 {percentile(ours, 0.95):.1f} ms',
                f'{ONE_PAGE} recordings: median {median(base):.1f} ms, p95 {percentile(base, 0.95):.1f} ms',
                note,
            )
        )
    return rows


def _users(workspace: Path, base_url: str, size: int) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    """A browser signed in through /onboard, and an API user with a token."""
    name = f'Records {size} {uuid.uuid4().hex[:8]}'
    cookie = asyncio.run(onboard(base_url, name))
    answer = httpx.post(f'{base_url}/api/onboard', json={'name': f'API {name}'}).raise_for_status().json()
    services = open_services(workspace)
    try:  # the page flow shows no id, so the browser's user is found by its unique name
        with services.database.session() as session:
            page_user = session.exec(select(User).where(User.name == name)).one()
    finally:
        services.close()
    return page_user.id, uuid.UUID(answer['user_id']), answer['token'], cookie


def _seed(workspace: Path, user_id: uuid.UUID, size: int) -> None:
    """Ready recordings, a minute apart, inserted in one transaction (seeding, not the measured path)."""
    services = open_services(workspace)
    now = datetime.now(UTC)
    try:
        with services.database.session() as session:
            for i in range(size):
                created = now - timedelta(minutes=i)
                session.add(
                    Recording(
                        user_id=user_id,
                        title=f'Seeded recording {i}',
                        mime_type='audio/webm',
                        status=RecordingStatus.READY,
                        created_at=created,
                        updated_at=created,
                        duration_ms=60_000,
                        size_bytes=960_000,
                    )
                )
            session.commit()
    finally:
        services.close()


def _time_requests(
    base_url: str, page_user: uuid.UUID, api_user: uuid.UUID, token: str, cookie: str, count: int
) -> dict[str, list[float]]:
    del page_user
    with httpx.Client(base_url=base_url, timeout=30, headers={'Authorization': f'Bearer {token}'}) as client:
        api = [_timed_api(client, f'/api/records/{api_user}') for _ in range(count)]
    shown = [asyncio.run(time_page(base_url, cookie, 'Seeded recording')) for _ in range(count)]
    return {'api': api, 'page': [ms for ms, _ in shown], 'in_html': [float(in_html) for _, in_html in shown]}


def _timed_api(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or len(response.json()) != ONE_PAGE:
        raise RuntimeError(f'GET {path} answered {response.status_code} without a full page of recordings')
    return elapsed


async def time_page(base_url: str, cookie: str, title: str) -> tuple[float, bool]:
    """Milliseconds until the list, known by a recording's `title`, is on the /records page; if the HTML came
    without it, the list arrives by websocket."""
    async with aiohttp.ClientSession(cookies={'session': cookie}) as http:
        started = time.perf_counter()
        page = await load_page(http, f'{base_url}/records')
        if title in json.dumps(page.elements):
            return (time.perf_counter() - started) * 1000, True
        updated: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def on_update(data: dict[str, Any]) -> None:
            if title in json.dumps(data) and not updated.done():
                updated.set_result(time.perf_counter())

        socket = await connect(base_url, page, http, {'update': on_update})
        try:
            return (await asyncio.wait_for(updated, timeout=30) - started) * 1000, False
        finally:
            await socket.disconnect()
