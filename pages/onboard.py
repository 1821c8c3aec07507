"""/onboard: a name in, an identity kept by the browser out; or a recovery key from another browser."""

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from pages.frame import frame, notify_error, sign_in, signed_in_user
from services.access.rate_limit import client_address
from services.access.users import MAX_NAME_LENGTH
from services.container import Services
from services.core.errors import AppError


def create(services: Services) -> None:
    @ui.page('/onboard')
    async def onboard_page(request: Request) -> RedirectResponse | None:
        if await signed_in_user(services):
            return RedirectResponse('/records')
        peer, forwarded = request.client.host if request.client else None, request.headers.get('x-forwarded-for')
        address = client_address(peer, forwarded, services.settings.trusted_proxy_count)
        with frame('Welcome'):
            content = ui.column().classes('w-full gap-4')
            with content:
                ui.label('Record voice notes in your browser. Every second is saved as you speak.')
                new_account_form(services, content, address)
                with ui.expansion('Already use Voice Recorder on another device?').classes('w-full'):
                    recovery_key_form(services, address)
        return None


def new_account_form(services: Services, content: ui.column, address: str) -> None:
    """A name is all an account needs; the recovery key it gets replaces the form."""
    name = (
        ui.input(
            'Your name',
            validation={
                'Please enter a name': lambda v: bool(v and v.strip()),
                f'At most {MAX_NAME_LENGTH} characters': lambda v: len((v or '').strip()) <= MAX_NAME_LENGTH,
            },
        )
        .props(f'autofocus maxlength={MAX_NAME_LENGTH} data-testid=name-input')
        .classes('w-72')
        .mark('name-input')
    )

    async def create_user() -> None:
        if not name.validate():
            return
        try:
            await services.rate_limits.onboard.hit_async(address)
            user, token = await run.io_bound(services.users.onboard, name=name.value or '')
        except AppError as error:
            notify_error(error)
            return
        sign_in(user)
        show_recovery_key(content, token)

    name.on('keydown.enter', create_user)
    ui.button('Continue', on_click=create_user).props('data-testid=onboard-submit').mark('onboard-submit')


def recovery_key_form(services: Services, address: str) -> None:
    key = (
        ui.input('Your recovery key', password=True, password_toggle_button=True)
        .props('data-testid=recovery-key-input')
        .classes('w-96')
        .mark('recovery-key-input')
    )

    async def sign_in_with_key() -> None:
        try:  # a sign-in is also a guess at a key, so it counts like a sign-up
            await services.rate_limits.onboard.hit_async(address)
        except AppError as error:
            notify_error(error)
            return
        try:
            user = await run.io_bound(services.users.authenticate, (key.value or '').strip())
        except AppError:
            ui.notify('That key does not match any account. Check it and try again.', type='negative')
            return
        sign_in(user)
        ui.navigate.to('/records')

    key.on('keydown.enter', sign_in_with_key)
    ui.button('Sign in', on_click=sign_in_with_key).props('flat data-testid=recovery-submit').mark('recovery-submit')


def show_recovery_key(container: ui.column, token: str) -> None:
    """The key is shown once: only its hash is stored, so nobody can show it again."""
    container.clear()
    with container:
        ui.label('Your recovery key').classes('text-h6')
        ui.label(
            'Keep it somewhere safe. It signs you in on another browser and works as your API token. '
            'It is shown only this once.'
        )
        ui.label(token).classes('vr-key').props('data-testid=recovery-key').mark('recovery-key')
        with ui.row():
            ui.button('Copy', icon='content_copy', on_click=lambda: ui.clipboard.write(token)).props('flat')
            ui.button('Continue to your recordings', on_click=lambda: ui.navigate.to('/records')).props(
                'data-testid=recovery-continue'
            ).mark('recovery-continue')
