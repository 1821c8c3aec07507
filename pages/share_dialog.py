"""The share dialog on /records: a public link with the lifetime the user picks, the moment it stops working, and
the phone's own share sheet (the Web Share API) where the browser has one, copying the link where it has not."""

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from nicegui import app, run, ui

from pages.formatting import format_local_time
from pages.frame import notify_error
from pages.session import signed_in_only
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, Share, User, utc_now

# What a link can live for, in hours: the share service takes 5 minutes to 30 days (MAX_LIFETIME); no link is
# forever, so a forgotten one cannot expose a recording for good.
LIFETIMES = {1: '1 hour', 24: '1 day', 24 * 7: '7 days', 24 * 30: '30 days'}
DEFAULT_LIFETIME = 24 * 7
# Shows the "Share…" buttons only where the browser can open its share sheet (see `.vr-can-share` in app.css).
DETECT_WEB_SHARE = 'document.documentElement.classList.toggle("vr-can-share", typeof navigator.share === "function")'


def expiry_text(expires_at: datetime, now: datetime, time_zone: str | None) -> str:
    """When a link stops working, in the user's zone, and how far off that is in words."""
    hours = (expires_at - now) / timedelta(hours=1)  # a link made a moment ago has a moment less than it was given
    if hours >= 23.5:
        days = round(hours / 24)
        distance = f'in {days} day{"s" if days != 1 else ""}'
    elif hours >= 0.75:
        distance = f'in {round(hours)} hour{"s" if round(hours) != 1 else ""}'
    else:
        distance = 'within the hour'
    return f'Works until {format_local_time(expires_at, time_zone)} ({distance})'


class ShareDialog:
    """Opened from a recording's Share button; `recording` is read when needed, as the title may change."""

    def __init__(self, services: Services, user: User, recording: Callable[[], Recording]) -> None:
        self.services, self.user, self.recording = services, user, recording

    async def open(self) -> None:
        ui.run_javascript(DETECT_WEB_SHARE)
        with ui.dialog() as dialog, ui.card().classes('vr-share-dialog'):
            ui.label(f'Share “{self.recording().title}”').classes('text-h6')
            ui.label('Anyone with the link can listen and read the transcript until it expires or you stop sharing.')
            self.links = ui.column().classes('w-full gap-3').mark('share-links')
            with ui.row().classes('items-end w-full gap-3'):
                lifetime = (
                    ui.select(LIFETIMES, value=DEFAULT_LIFETIME, label='New link works for')
                    .classes('vr-share-lifetime')
                    .props('data-testid=share-lifetime')
                    .mark('share-lifetime')
                )
                ui.button('Create link', on_click=lambda: self.create(lifetime.value)).props(
                    'no-caps data-testid=create-share'
                ).mark('create-share')
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
        await self.show_links()
        dialog.open()

    async def show_links(self) -> None:
        recording_id = self.recording().id
        shares = await run.io_bound(self.services.shares.active, user_id=self.user.id, recording_id=recording_id)
        self.links.clear()
        base = str(self.links.client.request.base_url).rstrip('/')  # not ui.context: clear() may delete the caller
        with self.links:
            for share in shares or []:
                self.link_row(share, f'{base}/share/{share.id}')

    def link_row(self, share: Share, url: str) -> None:
        now = utc_now()
        with ui.column().classes('w-full gap-1 vr-share-link'):
            ui.input(value=url).props('readonly dense aria-label="Share link" data-testid=share-url').classes(
                'w-full'
            ).mark('share-url')
            ui.label(expiry_text(share.expires_at, now, app.storage.user.get('time_zone'))).classes(
                'text-caption vr-share-expiry'
            ).props('data-testid=share-expiry').mark('share-expiry')
            with ui.row().classes('gap-2 items-center'):
                shared = json.dumps({'title': self.recording().title, 'url': url})
                # In the browser, so the share sheet opens within the tap (a user gesture), and a dismissed sheet
                # is not an error.
                ui.button('Share…', icon='ios_share').on(
                    'click', js_handler=f'() => navigator.share({shared}).catch(() => {{}})'
                ).classes('vr-web-share').props('outline no-caps data-testid=share-native').mark('share-native')
                ui.button('Copy link', icon='content_copy', on_click=lambda url=url: self.copy(url)).props(
                    'outline no-caps data-testid=copy-link'
                ).mark('copy-link')
                ui.button('Stop sharing', icon='link_off', on_click=lambda: self.revoke(share.id)).props(
                    'flat no-caps color=negative data-testid=revoke-share'
                ).mark('revoke-share')

    def copy(self, url: str) -> None:
        ui.clipboard.write(url)
        ui.notify('Link copied')

    @signed_in_only
    async def create(self, hours: int) -> None:
        try:
            await run.io_bound(
                self.services.shares.create,
                user_id=self.user.id,
                recording_id=self.recording().id,
                lifetime=timedelta(hours=int(hours if hours in LIFETIMES else DEFAULT_LIFETIME)),
            )
        except AppError as error:
            notify_error(error)
            return
        await self.show_links()

    @signed_in_only
    async def revoke(self, share_id: uuid.UUID) -> None:
        try:
            await run.io_bound(
                self.services.shares.revoke, user_id=self.user.id, recording_id=self.recording().id, share_id=share_id
            )
        except AppError as error:
            notify_error(error)
        await self.show_links()
