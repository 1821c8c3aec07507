"""A recording's title field: a title past the limit is refused with a visible count, never cut silently."""

from collections.abc import Awaitable, Callable

from nicegui import ui

from pages.session import signed_in_only
from services.recordings.service import MAX_TITLE_LENGTH


class TitleEditor:
    def __init__(self, title: str, *, on_save: Callable[[str], Awaitable[bool]], on_cancel: Callable[[], None]) -> None:
        self.on_save = on_save
        counter_id = f'vr-title-count-{id(self)}'
        with ui.element('div').classes('vr-title-editor'):
            self.field = (
                ui.input(value=title, on_change=self.count)
                .classes('grow')
                .props(f'autofocus dense aria-label="Title" data-testid=rename-input aria-describedby={counter_id}')
                .mark('rename-input')
            )
            self.field.on('keydown.enter', self.save)
            self.field.on('keydown.escape', on_cancel)
            ui.button(icon='check', on_click=self.save).props(
                'flat round aria-label="Save title" data-testid=rename-save'
            ).mark('rename-save')
            ui.button(icon='close', on_click=on_cancel).props('flat round aria-label="Cancel"')
        self.counter = (
            ui.label().classes('vr-title-count').props(f'id={counter_id} aria-live=polite').mark('title-counter')
        )
        self.count()

    @property
    def too_long(self) -> bool:
        return len(self.field.value or '') > MAX_TITLE_LENGTH

    def count(self) -> None:
        length = len(self.field.value or '')
        if self.too_long:
            self.counter.set_text(f'{length} / {MAX_TITLE_LENGTH}: too long, shorten it by {length - MAX_TITLE_LENGTH}')
        else:
            self.counter.set_text(f'{length} / {MAX_TITLE_LENGTH}')
        self.counter.classes(add='text-negative') if self.too_long else self.counter.classes(remove='text-negative')

    @signed_in_only
    async def save(self) -> None:
        if self.too_long:
            self.count()
            ui.notify(f'The title is too long: at most {MAX_TITLE_LENGTH} characters.', type='negative')
            return
        await self.on_save(self.field.value or '')  # a cleared input reports None; the service refuses it in words
