"""/recorder: record, pause, resume, stop; a timer, a level meter and the upload state in plain words."""

from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import app, ui

from services.container import Services

from .formatting import format_duration
from .frame import frame, signed_in_user
from .recorder_element import AudioRecorder


def create(services: Services) -> None:
    settings = services.settings

    @ui.page('/recorder', reconnect_timeout=settings.recorder_reconnect_timeout_s)
    async def recorder_page() -> RedirectResponse | None:
        user = await signed_in_user(services)
        if user is None:
            return RedirectResponse('/onboard')
        with frame('New recording', user):

            def remember_time_zone(info: dict[str, Any]) -> None:
                if isinstance(info.get('time_zone'), str):
                    app.storage.user['time_zone'] = info['time_zone'][:64]

            def show_saved(recording: dict[str, Any]) -> None:
                result.clear()
                with result, ui.card().classes('w-full vr-saved').mark('saved-card'):
                    ui.label(f'Saved “{recording["title"]}” ({format_duration(recording["duration_ms"])})')
                    ui.link('Listen to it in your recordings', '/records').props('data-testid=saved-link').mark(
                        'saved-link'
                    )

            recorder = (
                AudioRecorder(
                    user_id=user.id,
                    max_chunk_bytes=settings.max_chunk_bytes,
                    timeslice_ms=settings.chunk_timeslice_ms,
                    on_started=remember_time_zone,
                    on_saved=show_saved,
                )
                .classes('w-full')
                .mark('recorder')
            )
            with recorder:
                ui.label('00:00').classes('vr-timer').props('data-testid=recording-timer aria-live=off').mark(
                    'recording-timer'
                )
                ui.label('Ready to record').classes('vr-status').props(
                    'data-testid=upload-status aria-live=polite'
                ).mark('upload-status')
                with ui.row().classes('vr-controls gap-3'):
                    for name, label, icon, color in (
                        ('record', 'Record', 'mic', 'red'),
                        ('pause', 'Pause', 'pause', 'primary'),
                        ('resume', 'Resume', 'fiber_manual_record', 'red'),
                        ('stop', 'Stop', 'stop', 'primary'),
                    ):
                        (
                            ui.button(label, icon=icon, color=color)
                            .on('click', js_handler=recorder.js_call(name))
                            .classes(f'vr-{name}')
                            .props(f'data-testid={name}-button')
                            .mark(f'{name}-button')
                        )
            result = ui.column().classes('w-full')
        return None
