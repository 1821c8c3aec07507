"""The frame every page shares, and the browser identity it rests on."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, run, ui

from pages.session import current_session, leave_page
from services.container import Services
from services.core.errors import AppError
from services.core.models import User
from services.core.version import app_version


async def signed_in_user(services: Services) -> User | None:
    """The user this browser is signed in as, or None: unknown id, a deleted user, or a session that "sign out
    everywhere", a key rotation or a "Sign out" ended (the browser keeps the credential version it signed in with,
    and the id of its session)."""
    user_id = app.storage.user.get('user_id')
    if not user_id:
        return None
    version = app.storage.user.get('credential_version', 1)  # sessions from before versions were kept are version 1
    session_id = app.storage.user.setdefault('session_id', str(uuid.uuid4()))  # and ones from before ids get one now
    try:
        return await run.io_bound(services.users.current, uuid.UUID(user_id), int(version), uuid.UUID(session_id))
    except (AppError, ValueError, TypeError):
        app.storage.user.clear()
        return None


def sign_in(user: User) -> None:
    app.storage.user['user_id'] = str(user.id)
    app.storage.user['credential_version'] = user.credential_version
    app.storage.user['session_id'] = str(uuid.uuid4())


async def sign_out() -> None:
    """End this browser's session (its open tabs and upload tokens with it) and forget the identity here; unsent
    audio stays in IndexedDB for this user's next sign-in."""
    session = current_session()
    if session is not None:
        try:
            await run.io_bound(session.services.users.end_session, session.user.id, session.session_id)
        except AppError as error:
            notify_error(error)
            return
    app.storage.user.clear()
    leave_page()


# The installable app: its manifest, icons and the header's colour for the browser's bar, on every page.
APP_HEAD = """<link rel="stylesheet" href="/assets/app.css">
<link rel="manifest" href="/assets/manifest.json">
<link rel="apple-touch-icon" href="/assets/icons/apple-touch-icon.png">
<meta name="theme-color" content="#263238" media="(prefers-color-scheme: light)">
<meta name="theme-color" content="#1c2529" media="(prefers-color-scheme: dark)">
<meta name="apple-mobile-web-app-capable" content="yes">
<meta name="mobile-web-app-capable" content="yes">
<meta name="apple-mobile-web-app-title" content="Recorder">
<meta name="color-scheme" content="light dark">"""


@contextmanager
def frame(title: str, user: User | None = None) -> Iterator[None]:
    ui.add_head_html(APP_HEAD)
    ui.page_title(f'{title} · Voice Recorder')
    ui.dark_mode(None)  # follow the system's light or dark setting
    header(user)
    with ui.column().classes('vr-page w-full'):
        ui.label(title).classes('text-h5 vr-title')
        yield
    with ui.element('footer').classes('w-full text-center text-caption vr-footer'):
        ui.label(f'Voice Recorder {app_version()}').mark('app-version')


def header(user: User | None) -> None:
    """One row on a 390 px phone too: there the brand shrinks to its icon (its name stays for screen readers)."""
    with ui.header().classes('vr-header items-center justify-between no-wrap'):
        with ui.link(target='/records' if user else '/onboard').classes('vr-brand no-wrap'):
            ui.icon('radio_button_checked').classes('vr-brand-icon').props('aria-hidden=true')
            ui.label('Voice Recorder').classes('vr-brand-text')
        if user:
            with ui.element('nav').classes('row items-center no-wrap vr-nav-row').props('aria-label="Main"'):
                ui.link('Record', '/recorder').classes('vr-nav').mark('nav-recorder')
                ui.link('Recordings', '/records').classes('vr-nav').mark('nav-records')
                ui.label(user.name).classes('vr-user-name').mark('user-name')
                ui.button('Sign out', on_click=sign_out).props(
                    'flat dense no-caps color=white data-testid=sign-out'
                ).mark('sign-out')


def notify_error(error: AppError) -> None:
    ui.notify(error.message[:1].upper() + error.message[1:], type='negative')
