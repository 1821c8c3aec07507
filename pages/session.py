"""Whether the browser session a page was loaded for still holds: every page action asks first, and the page asks
twice a second by itself, so a signed-out page is sent to /onboard.

A page keeps what it was loaded for (user, credential version, browser session). "Sign out on every device", a key
rotation or this browser's "Sign out" end it wherever it happened: pages notice within half a second when it
happened in this process, and within `VR_CREDENTIAL_RECHECK_S` plus half a second when another instance did it
(each process reads a user's credentials at most once per interval, however many pages it has open).
"""

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nicegui import Client, app, ui

from services.container import Services
from services.core.errors import AppError, Unauthorized
from services.core.models import User

LOOK_EVERY_S = 0.5
_KEY = 'page_session'  # in app.storage.client: one page, one session


@dataclass
class PageSession:
    services: Services
    user: User
    session_id: uuid.UUID
    client: Client
    left: bool = False

    def upload_token(self) -> str:
        """Names this browser session, so its "Sign out" ends the token too."""
        user = self.user
        return self.services.upload_tokens.issue(user.id, user.credential_version, session_id=self.session_id)

    async def still_valid(self, *, fresh: bool = True) -> bool:
        """`fresh` reads the database (one indexed read) and is what actions ask; the page's own look uses the cache."""
        try:
            await self.services.users.credentials.check(
                self.user.id, self.user.credential_version, self.session_id, fresh=fresh
            )
        except Unauthorized:
            self.leave()
            return False
        except AppError:  # the database is unreachable: do nothing now, send nobody away
            if fresh:
                ui.notify('Your sign-in cannot be checked right now; please try again shortly.', type='negative')
            return False
        return True

    def leave(self) -> None:
        if not self.left and not self.client.is_deleted:
            self.left = True
            with self.client:
                ui.navigate.to('/onboard')


def watch(services: Services, user: User) -> PageSession:
    """For a page `signed_in_user` let in: remembers what it was loaded for, and looks again twice a second."""
    session = PageSession(services, user, uuid.UUID(app.storage.user['session_id']), ui.context.client)
    app.storage.client[_KEY] = session
    ui.timer(LOOK_EVERY_S, lambda: None if session.left else session.still_valid(fresh=False))
    return session


def current_session() -> PageSession | None:
    session = app.storage.client.get(_KEY)
    return session if isinstance(session, PageSession) else None


def leave_page() -> None:
    """After this page itself signed out."""
    session = current_session()
    if session is not None:
        session.leave()
    else:
        ui.navigate.to('/onboard')


def signed_in_only(action: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """For every page action: it runs only while the page's session still holds, read afresh; otherwise the page
    goes to /onboard and nothing happens. A page without a session (the public share page) has no such actions."""

    @functools.wraps(action)  # NiceGUI reads the wrapped signature to decide whether to pass the event
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        session = current_session()
        if session is None or not await session.still_valid():
            return None
        result = action(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    return guarded
