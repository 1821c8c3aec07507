"""A recording's actions in one style, icon buttons with names: rename, download (the original or an MP3), share,
delete. Every URL is signed when it is asked for, so a page left open for hours still downloads."""

from typing import TYPE_CHECKING

from nicegui import ui

from pages.frame import notify_error
from pages.session import signed_in_only
from pages.share_dialog import ShareDialog
from services.container import Services
from services.core.errors import AppError
from services.core.models import User

if TYPE_CHECKING:
    from pages.recording_card import RecordingCard


def action_button(icon: str, name: str, marker: str, on_click: object, *, negative: bool = False) -> ui.button:
    """The one style of a recording's actions: a round icon button, its name for screen readers and as a tooltip."""
    button = ui.button(icon=icon, on_click=on_click).props(  # type: ignore[arg-type]
        f'flat round aria-label="{name}" data-testid={marker}' + (' color=negative' if negative else '')
    )
    with button:
        ui.tooltip(name)
    return button.mark(marker)


class RecordingActions:
    def __init__(self, services: Services, user: User, card: 'RecordingCard', *, playable: bool) -> None:
        self.services = services
        self.user = user
        self.card = card
        with ui.element('div').classes('vr-actions').props('role=group aria-label="Actions"'):
            if playable:
                action_button('edit', 'Rename', 'rename-button', card.edit_title)
                action_button('download', 'Download the original', 'download-link', self.download)
                action_button('audio_file', 'Download as MP3', 'mp3-button', self.download_mp3)
                action_button('share', 'Share', 'share-button', self.share)
            action_button('delete', 'Delete', 'delete-button', lambda: card.on_delete(card.recording), negative=True)
        self.progress_area = ui.row().classes('w-full')

    @signed_in_only
    def download(self) -> None:
        ui.download(self.services.links.url(self.card.recording, download=True, kind='imported'))

    @signed_in_only
    async def download_mp3(self) -> None:
        """The MP3 is made once, on the encoder pool (awaited, holding no thread); a bar shows how far it got, then the
        browser downloads it."""
        done = {'fraction': 0.0}
        self.progress_area.clear()
        with self.progress_area:
            bar = ui.linear_progress(value=0, show_value=False).classes('w-full').mark('mp3-progress')
            ticker = ui.timer(0.2, lambda: bar.set_value(done['fraction']))
        try:
            recording = await self.services.exports.await_mp3(
                user_id=self.user.id,
                recording_id=self.card.recording.id,
                progress=lambda fraction: done.update(fraction=fraction),
            )
        except AppError as error:
            notify_error(error)
            return
        finally:
            ticker.cancel()
            self.progress_area.clear()
        if recording is not None:
            ui.download(self.services.links.url(recording, download=True, kind='mp3'))

    @signed_in_only
    async def share(self) -> None:
        await ShareDialog(self.services, self.user, lambda: self.card.recording).open()
