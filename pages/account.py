"""The Account section of /records: the language you speak, and "Sign out on every device"."""

from nicegui import app, run, ui

from pages.formatting import language_choices
from pages.frame import notify_error
from pages.session import leave_page, signed_in_only
from services.container import Services
from services.core.errors import AppError
from services.core.models import User
from services.transcripts.languages import language_name


def account_section(services: Services, user: User) -> None:
    with ui.expansion('Account').classes('w-full vr-account'):
        ui.select(
            language_choices('Detect it in each recording'),
            value=user.language or '',
            label='The language you speak',
            with_input=True,
            on_change=lambda event: choose_language(services, user, event.value),
        ).classes('w-72').props('data-testid=default-language').mark('default-language')
        ui.label(
            'Your recordings are transcribed in it; a recording can still be transcribed again in another.'
        ).classes('text-caption')
        ui.label(
            'Lost a device, or signed in somewhere you should not have? This ends every session of yours, '
            'here too; your recovery key signs you in again.'
        ).classes('text-caption')
        ui.button(
            'Sign out on every device', icon='logout', on_click=lambda: sign_out_everywhere(services, user)
        ).props('flat color=negative data-testid=sign-out-everywhere').mark('sign-out-everywhere')


@signed_in_only
async def choose_language(services: Services, user: User, value: str | None) -> None:
    try:
        chosen = await run.io_bound(services.users.set_language, user.id, value or None)
    except AppError as error:
        notify_error(error)
        return
    if chosen is not None:
        user.language = chosen.language
        said = language_name(chosen.language) if chosen.language else 'the language each recording is in'
        ui.notify(f'New recordings are transcribed in {said}')


@signed_in_only
async def sign_out_everywhere(services: Services, user: User) -> None:
    try:
        await run.io_bound(services.users.sign_out_everywhere, user.id)
    except AppError as error:
        notify_error(error)
        return
    app.storage.user.clear()
    leave_page()
