"""5. Footprint: RSS of the idle app, and what each connected /recorder page adds; the bare server beside it."""

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import psutil

from bench import identities
from bench.page_client import LoadedPage, connect, load_page
from bench.report import Row
from bench.servers import BaselineServer, app_server, pid_of, rss_mb

PAGES = 200
QUICK_PAGES = 50
SETTLE_S = 3.0


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    count = QUICK_PAGES if quick else PAGES
    browsers = identities.ensure(workspace, count + 1)
    say(f'footprint: idle, then {count} connected recorder pages')
    server = app_server(workspace).start()
    try:
        ours = asyncio.run(_measure(server.url, pid_of(server), browsers))
    finally:
        server.stop()
    bare_server = BaselineServer(workspace, 'bare_server').start()
    try:
        bare = asyncio.run(_measure(bare_server.url, pid_of(bare_server), [''] * (count + 1), bare=True))
    finally:
        bare_server.stop()
    return [
        Row(
            '5 footprint', 'idle app (started, nothing served)', f'**{ours[0]:.0f} MB** RSS', f'bare: {bare[0]:.0f} MB'
        ),
        Row(
            '5 footprint',
            f'per connected /recorder page ({count} pages)',
            f'**{ours[1]:.2f} MB** each',
            f'bare: {bare[1]:.3f} MB per connection',
            'page built, websocket and /vr audio channel joined, not recording; after one warm-up page',
        ),
    ]


async def _measure(base_url: str, pid: int, browsers: list[str], bare: bool = False) -> tuple[float, float]:
    """(idle RSS, RSS added per page); the first page is a warm-up, so one-time imports are not counted per page."""
    process = psutil.Process(pid)
    await asyncio.sleep(SETTLE_S)
    idle = rss_mb(process)
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        await _open(stack, base_url, http, browsers[0], bare)
        await asyncio.sleep(SETTLE_S)
        warm = rss_mb(process)
        for browser in browsers[1:]:
            await _open(stack, base_url, http, browser, bare)
        await asyncio.sleep(SETTLE_S)
        loaded = rss_mb(process)
    return idle, (loaded - warm) / (len(browsers) - 1)


async def _open(stack: AsyncExitStack, base_url: str, http: aiohttp.ClientSession, browser: str, bare: bool) -> None:
    if bare:
        page, token = LoadedPage(base_url, 'bare', {}), 'bare'
    else:
        async with aiohttp.ClientSession(cookies={'session': browser}) as tab:
            page = await load_page(tab, f'{base_url}/recorder')
        token = page.elements[page.element_id(recoverOnly=False)]['props']['uploadToken']
    socket = await connect(base_url, page, http, upload_token=token)
    stack.push_async_callback(socket.disconnect)
