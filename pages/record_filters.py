"""The filters beside the search on /records: "Starred" and one chip per tag the user gave (one tag at a time), each a
toggle button (aria-pressed), combined with the search."""

from collections.abc import Awaitable, Callable

from nicegui import run, ui

from services.container import Services
from services.core.errors import AppError
from services.core.models import User


class Filters:
    def __init__(self, services: Services, user: User, on_change: Callable[[], Awaitable[None]]) -> None:
        self.services = services
        self.user = user
        self.on_change = on_change
        self.favourite = False
        self.tag: str | None = None
        self.area = ui.element('div').classes('vr-filters').props('role=group aria-label="Show only"').mark('filters')

    @property
    def active(self) -> bool:
        return self.favourite or self.tag is not None

    def describe(self) -> str:
        """What the filters ask for, in words, for the no-match state."""
        parts = (['starred'] if self.favourite else []) + ([f'tagged “{self.tag}”'] if self.tag else [])
        return ' and '.join(parts)

    async def show(self) -> None:
        try:
            tags = await run.io_bound(self.services.recordings.tags, user_id=self.user.id) or []
        except AppError:
            tags = []  # the list says what went wrong; the chips wait for the next look
        vanished = self.tag is not None and self.tag.casefold() not in {t.tag.casefold() for t in tags}
        if vanished:
            self.tag = None  # its last recording lost the tag: the list shows them all again
        if self.area.is_deleted:
            return
        self.area.clear()
        with self.area:
            self.chip('Starred', self.favourite, self.toggle_favourite, icon='star', marker='filter-favourite')
            for counted in tags:
                self.chip(counted.tag, self.tag == counted.tag, self.toggler(counted.tag), marker='filter-tag')
        if vanished:
            with self.area:  # the caller's element (a removed tag's chip) may be gone: act from one that is not
                await self.on_change()

    def chip(
        self, label: str, pressed: bool, on_click: Callable[[], Awaitable[None]], *, marker: str, icon: str = ''
    ) -> None:
        style = 'unelevated color=primary' if pressed else 'outline color=primary'
        ui.button(label, icon=icon or None, on_click=on_click).props(
            f'{style} rounded dense no-caps no-wrap aria-pressed={"true" if pressed else "false"} data-testid={marker}'
        ).classes('vr-filter').mark(marker)

    async def toggle_favourite(self) -> None:
        self.favourite = not self.favourite
        await self.changed()

    def toggler(self, tag: str) -> Callable[[], Awaitable[None]]:
        return lambda: self.toggle_tag(tag)

    async def toggle_tag(self, tag: str) -> None:
        self.tag = None if self.tag == tag else tag
        await self.changed()

    async def clear(self) -> None:
        self.favourite, self.tag = False, None
        await self.changed()

    async def changed(self) -> None:
        # The caller (a chip, or "Show all recordings" in the list) may be gone once the list is drawn again: what
        # follows acts from the filters' own element, so the page's session is still found.
        with self.area:
            await self.show()
            await self.on_change()
