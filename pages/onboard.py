"""/onboard: a name in, an identity kept by the browser out."""

from fastapi.responses import RedirectResponse
from nicegui import app, run, ui

from services.container import Services
from services.errors import AppError
from services.users import MAX_NAME_LENGTH

from .frame import frame, notify_error, signed_in_user


def create(services: Services) -> None:
    @ui.page('/onboard')
    async def onboard_page() -> RedirectResponse | None:
        if await signed_in_user(services):
            return RedirectResponse('/records')
        with frame('Welcome'):
            ui.label('Record voice notes in your browser. Every second is saved as you speak.')
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

            async def submit() -> None:
                if not name.validate():
                    return
                try:
                    user, _token = await run.io_bound(services.users.onboard, name=name.value or '')
                except AppError as error:
                    notify_error(error)
                    return
                app.storage.user['user_id'] = str(user.id)
                ui.navigate.to('/records')

            name.on('keydown.enter', submit)
            ui.button('Continue', on_click=submit).props('data-testid=onboard-submit').mark('onboard-submit')
        return None
