"""Who each open `/vr` connection speaks for, so a sign-out in this process closes that user's connections at once.

A sign-out in another process reaches them through the credential check each message makes (see
services/access/credentials.py): within `VR_CREDENTIAL_RECHECK_S`, and at once for a message that starts a recording.
"""

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from services.access.upload_tokens import UploadGrant
from services.core.errors import ServiceUnavailable


@dataclass
class Connection:
    grant: UploadGrant
    revoked: bool = False  # its credential was found revoked: it is being closed, and answers nothing meanwhile


class Connections:
    def __init__(self, disconnect: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._disconnect = disconnect
        self._open: dict[str, Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()  # referenced until done, so none is collected midway

    def add(self, sid: str, grant: UploadGrant) -> None:
        self._loop = asyncio.get_running_loop()  # where sign-outs made in other threads send their closing
        self._open[sid] = Connection(grant)

    def remove(self, sid: str) -> None:
        self._open.pop(sid, None)

    def get(self, sid: str) -> Connection:
        connection = self._open.get(sid)
        if connection is None:  # it closed while its message waited (an overloaded server drops late pings)
            raise ServiceUnavailable('the connection closed; this will be sent again')
        return connection

    def sessions_ended(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
        """A `UserService.on_revoked` listener: runs in the revoking thread, so the closing goes to the loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_sessions, user_id, session_id)

    def _close_sessions(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
        for sid, connection in list(self._open.items()):
            if connection.grant.user_id == user_id and session_id in (None, connection.grant.session_id):
                self.close(sid, connection)

    def close(self, sid: str, connection: Connection) -> None:
        if not connection.revoked:
            connection.revoked = True
            task = asyncio.get_running_loop().create_task(self._disconnect(sid))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
