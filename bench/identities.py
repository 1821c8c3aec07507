"""Browser identities for the simulated recorders, each signed in once through the real /onboard page."""

import asyncio
import json
from pathlib import Path

from .page_client import onboard
from .servers import app_server

ONBOARD_CONCURRENCY = 8


def ensure(workspace: Path, count: int) -> list[str]:
    """`count` session cookies, kept in the workspace so every benchmark and every server restart reuses them."""
    path = workspace / 'identities.json'
    known: list[str] = json.loads(path.read_text()) if path.exists() else []
    if len(known) < count:
        server = app_server(workspace).start()
        try:
            known += asyncio.run(_onboard_many(server.url, len(known), count - len(known)))
        finally:
            server.stop()  # a graceful stop writes NiceGUI's browser storage, which holds the identities
        path.write_text(json.dumps(known))
    return known[:count]


async def _onboard_many(base_url: str, first: int, count: int) -> list[str]:
    gate = asyncio.Semaphore(ONBOARD_CONCURRENCY)

    async def one(number: int) -> str:
        async with gate:
            return await onboard(base_url, f'Bench recorder {number}')

    return list(await asyncio.gather(*(one(first + i) for i in range(count))))
