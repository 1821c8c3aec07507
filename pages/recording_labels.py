"""A recording's star and tags on /records: the star toggles on the row, the tags are chips to remove and a field to
add one in the open row. The limits (`VR_MAX_TAGS_PER_RECORDING`, `VR_MAX_TAG_CHARS`) are the service's: past them
it refuses in plain words and nothing changes."""

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import run, ui

from pages.frame import notify_error
from pages.session import signed_in_only
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, User


class Labels:
    def __init__(
        self,
        services: Services,
        user: User,
        get: Callable[[], Recording],
        on_change: Callable[[Recording], Awaitable[None]],
    ) -> None:
        self.services = services
        self.user = user
        self.get = get  # the row's recording, as it is now (renamed, starred)
        self.on_change = on_change

    def star(self) -> None:
        recording = self.get()
        starred = bool(recording.favourite)
        ui.button(icon='star' if starred else 'star_border', on_click=self.toggle_star).props(
            f'flat round aria-label="Favourite" aria-pressed={"true" if starred else "false"} '
            'data-testid=favourite-toggle'
        ).classes('vr-star' + (' vr-star--on' if starred else '')).mark('favourite-toggle')

    def tag_editor(self) -> None:
        with ui.element('div').classes('vr-tags').props('role=group aria-label="Tags"'):
            for tag in self.get().tags or []:
                ui.chip(tag, color=None, removable=True, on_value_change=lambda _, tag=tag: self.remove_tag(tag)).props(
                    f'dense data-testid=tag-chip remove-aria-label="Remove the tag {_attr(tag)}"'
                ).classes('vr-tag').mark('tag-chip')
            field = (
                ui.input(placeholder='Add a tag')
                .props('dense aria-label="Add a tag" data-testid=tag-input')
                .classes('vr-tag-input')
                .mark('tag-input')
            )
            field.on('keydown.enter', lambda: self.add_tag(field))
            ui.button(icon='add', on_click=lambda: self.add_tag(field)).props(
                'flat round aria-label="Add the tag" data-testid=tag-add'
            ).mark('tag-add')

    @signed_in_only
    async def toggle_star(self) -> None:
        recording = self.get()
        await self.save(favourite=not recording.favourite)

    @signed_in_only
    async def add_tag(self, field: ui.input) -> None:
        tag = (field.value or '').strip()
        if not tag:
            return
        await self.save(tags=[*(self.get().tags or []), tag])  # the row draws its tags again, the field empty

    @signed_in_only
    async def remove_tag(self, tag: str) -> None:
        await self.save(tags=[t for t in self.get().tags or [] if t != tag])

    async def save(self, **change: Any) -> bool:
        try:
            updated = await run.io_bound(
                self.services.recordings.update, user_id=self.user.id, recording_id=self.get().id, **change
            )
        except AppError as error:
            notify_error(error)
            return False
        if updated is None:  # the app is shutting down
            return False
        await self.on_change(updated)
        return True


def _attr(text: str) -> str:
    """Quasar props are parsed, not rendered: keep user text from closing the attribute."""
    return text.replace('"', '′').replace('\\', '/')[:80]
