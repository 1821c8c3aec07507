"""/recorder: record, pause, resume, stop; a timer, a level meter and the upload state in plain words."""

import uuid
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import app, run, ui

from pages.formatting import format_duration, valid_time_zone
from pages.frame import frame, signed_in_user
from pages.live_transcript import LiveTranscriptView
from pages.recorder_element import AudioRecorder
from pages.session import watch
from services.container import Services
from services.core.errors import AppError
from services.core.models import Recording, RecordingPublic

# (name, label, icon, colour, props): Record and Stop are the big round button in the centre, each state's main
# action in one place under the thumb; Pause and Resume sit beside it, smaller and outlined, so none is mistaken for
# another. Stop's colours are in app.css, per theme.
CONTROLS = (
    ('record', 'Record', 'mic', 'negative', 'unelevated size=lg'),
    ('pause', 'Pause', 'pause', 'primary', 'outline'),
    ('resume', 'Resume', 'fiber_manual_record', 'negative', 'outline'),
    ('stop', 'Stop', 'stop', None, 'unelevated size=lg'),
)
# What assets/recorder.js listens for (its `shortcut`); kept from screens without a keyboard by the CSS.
KEYBOARD_HINTS = '<kbd>Space</kbd> records, pauses and resumes · <kbd>Enter</kbd> or <kbd>Esc</kbd> stops'


def create(services: Services) -> None:
    settings = services.settings

    @ui.page('/recorder', reconnect_timeout=settings.recorder_reconnect_timeout_s)
    async def recorder_page(saved: str | None = None) -> RedirectResponse | None:
        user = await signed_in_user(services)
        if user is None:
            return RedirectResponse('/onboard')
        just_saved = await saved_recording(services, user.id, saved)
        session = watch(services, user)
        with frame('New recording', user):
            recorder = (
                AudioRecorder(
                    user_id=user.id,
                    upload_token=session.upload_token(),
                    max_chunk_bytes=settings.max_chunk_bytes,
                    timeslice_ms=settings.chunk_timeslice_ms,
                    max_recording_s=settings.max_recording_s,
                    on_started=lambda info: started(info, live),
                    on_saved=lambda recording: confirm_saved(result, recording, live),
                    on_recovered=show_recovered,
                )
                .classes('w-full')
                .mark('recorder')
            )
            with recorder:
                ui.label(format_duration(0)).classes('vr-timer').props('data-testid=recording-timer').mark(
                    'recording-timer'
                )
                ui.label('Ready to record').classes('vr-status').props(
                    'data-testid=upload-status aria-live=polite'
                ).mark('upload-status')
                controls(recorder)
                live = LiveTranscriptView(services, session)
            result = ui.column().classes('w-full')
            if just_saved:
                show_saved(result, RecordingPublic.model_validate(just_saved).model_dump(mode='json'))
        return None


def controls(recorder: AudioRecorder) -> None:
    with ui.row().classes('vr-controls no-wrap'):
        for name, label, icon, colour, props in CONTROLS:
            (
                ui.button(label, icon=icon, color=colour)
                .on('click', js_handler=recorder.js_call(name))
                .classes(f'vr-control vr-{name}')
                .props(f'{props} round stack no-caps data-testid={name}-button')
                .mark(f'{name}-button')
            )
    ui.html(KEYBOARD_HINTS, sanitize=False).classes('vr-hints').props('data-testid=keyboard-hints').mark(
        'keyboard-hints'
    )


def confirm_saved(container: ui.column, recording: dict[str, Any], live: LiveTranscriptView) -> None:
    show_saved(container, recording)
    live.saved_recording()


def started(info: Any, live: LiveTranscriptView) -> Any:
    remember_time_zone(info)
    return live.started(info)  # NiceGUI awaits what a handler returns


def remember_time_zone(info: Any) -> None:
    """The browser's zone for the times on /records; checked here, as a client may send anything."""
    app.storage.user['time_zone'] = valid_time_zone(info.get('time_zone') if isinstance(info, dict) else None)


def show_saved(container: ui.column, recording: dict[str, Any]) -> None:
    container.clear()
    with container, ui.card().classes('w-full vr-saved').mark('saved-card'):
        ui.label(f'Saved “{recording["title"]}” ({format_duration(recording["duration_ms"])})')
        ui.link('Listen to it in your recordings', '/records').props('data-testid=saved-link').mark('saved-link')


def show_recovered(recording: dict[str, Any]) -> None:
    duration = format_duration(recording['duration_ms'])
    ui.notify(f'Recovered recording “{recording["title"]}” ({duration})', type='positive')


async def saved_recording(services: Services, user_id: uuid.UUID, recording_id: str | None) -> Recording | None:
    """The recording a reloaded recorder page was asked to confirm, if it is this user's."""
    if not recording_id:
        return None
    try:
        return await run.io_bound(services.recordings.get, user_id=user_id, recording_id=uuid.UUID(recording_id))
    except (AppError, ValueError):
        return None
