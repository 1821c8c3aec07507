"""Browser identities for the simulated recorders, each signed in once through the real /onboard page."""

import asyncio
import json
from pathlib import Path

from bench.page_client import onboard
from bench.servers import app_server

ONBOARD_CONCURRENCY = 8


def ensure(workspace: Path, count: int, base_url: str | None = None) -> list[str]:
    """`count` session cookies, kept in the workspace so every benchmark and every server restart reuses them.

    An identity is only valid where it was made (its user row, NiceGUI's storage of its browser): by default that is
    the workspace's own app, started here; with `base_url` it is the running server there (e.g. the scale-out stack,
    whose PostgreSQL and Redis hold them), and `workspace` should then be a folder of that server's own.
    """
    path = workspace / 'identities.json'
    known: list[str] = json.loads(path.read_text()) if path.exists() else []
    if len(known) < count:
        if base_url:
            known += asyncio.run(_onboard_many(base_url, len(known), count - len(known)))
        else:
            known += _onboard_on_workspace_app(workspace, len(known), count - len(known))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known))
    return known[:count]


def _onboard_on_workspace_app(workspace: Path, first: int, count: int) -> list[str]:
    server = app_server(workspace).start()
    try:
        return asyncio.run(_onboard_many(server.url, first, count))
    finally:
        server.stop()  # a graceful stop writes NiceGUI's browser storage, which holds the identities


async def _onboard_many(base_url: str, first: int, count: int) -> list[str]:
    gate = asyncio.Semaphore(ONBOARD_CONCURRENCY)

    async def one(number: int) -> str:
        async with gate:
            return await onboard(base_url, f'Bench recorder {number}')

    return list(await asyncio.gather(*(one(first + i) for i in range(count))))
