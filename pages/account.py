"""The Account section of /records: the language you speak, the names and terms you use, "Sign out on every device"."""

from nicegui import app, run, ui

from pages.formatting import language_choices
from pages.frame import notify_error
from pages.session import leave_page, signed_in_only
from services.container import Services
from services.core.errors import AppError
from services.core.models import User
from services.transcripts.languages import language_name
from services.transcripts.vocabulary import VocabularyLimits, cleaned_entries


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
        vocabulary_editor(services, user)
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


def vocabulary_editor(services: Services, user: User) -> None:
    """The user's vocabulary, one entry a line, with what it counts against the limits as it is typed."""
    limits = services.users.vocabulary_limits
    field = (
        ui.textarea(
            'Names and terms you use, one a line',
            value='\n'.join(user.vocabulary or []),
            placeholder='Zanzibar\nPriya Venkataraman',
        )
        .classes('w-full')
        .props('autogrow data-testid=vocabulary-input')
        .mark('vocabulary-input')
    )
    counter = ui.label().classes('text-caption').props('data-testid=vocabulary-count').mark('vocabulary-count')
    field.on_value_change(lambda: show_count(counter, field.value, limits))
    show_count(counter, field.value, limits)
    ui.label(
        f'Your recordings are transcribed listening for them, spelled as you write them: at most {limits.max_entries}, '
        f'{limits.max_entry_chars} characters each.'
    ).classes('text-caption')
    ui.button('Save names and terms', icon='spellcheck', on_click=lambda: save_vocabulary(services, user, field)).props(
        'flat data-testid=vocabulary-save'
    ).mark('vocabulary-save')


def show_count(counter: ui.label, text: str | None, limits: VocabularyLimits) -> None:
    entries = cleaned_entries((text or '').splitlines())
    chars = sum(map(len, entries))
    counter.text = f'{len(entries)} of {limits.max_entries} entries, {chars} of {limits.max_chars} characters'
    over = len(entries) > limits.max_entries or chars > limits.max_chars
    counter.classes(replace='text-caption text-negative' if over else 'text-caption')  # red past a limit


@signed_in_only
async def save_vocabulary(services: Services, user: User, field: ui.textarea) -> None:
    try:
        saved = await run.io_bound(services.users.set_vocabulary, user.id, (field.value or '').splitlines())
    except AppError as error:
        notify_error(error)
        return
    if saved is not None:
        user.vocabulary = saved.vocabulary
        field.value = '\n'.join(saved.vocabulary or [])
        count = len(saved.vocabulary or [])
        ui.notify(f'Saved {count} {"entry" if count == 1 else "entries"}: new transcripts listen for them')


@signed_in_only
async def sign_out_everywhere(services: Services, user: User) -> None:
    try:
        await run.io_bound(services.users.sign_out_everywhere, user.id)
    except AppError as error:
        notify_error(error)
        return
    app.storage.user.clear()
    leave_page()
