"""/share/<id>: the public page of a shared recording: its title, date, length, a player, its waveform and its
transcript, and until when the link works."""

import uuid

from nicegui import app, run, ui

from pages.formatting import format_duration, format_local_time
from pages.frame import frame
from pages.transcript_panel import TranscriptPanel
from pages.waveform_element import Waveform
from services.audio.waveforms import peaks_of
from services.container import Services
from services.core.errors import AppError


def create(services: Services) -> None:
    @ui.page('/share/{share_id}')
    async def shared_page(share_id: str) -> None:
        try:
            share, recording = await run.io_bound(services.shares.resolve, uuid.UUID(share_id))
        except (AppError, ValueError):
            with frame('Link not available'):
                ui.label('This link has expired or was revoked.').mark('share-gone')
            return
        with frame(recording.title):
            zone = app.storage.user.get('time_zone')  # this browser's, if it ever recorded here; else UTC
            recorded = format_local_time(recording.created_at, zone) + ('' if zone else ' UTC')
            ui.label(f'Recorded {recorded} · {format_duration(recording.duration_ms)}').classes('vr-share-meta').props(
                'data-testid=share-meta'
            ).mark('share-meta')
            # Never the owner's audio URL: it outlives a revoked link. This one is checked on every request.
            player = (
                ui.audio(f'/api/shares/{share.id}/audio')
                .classes('w-full')
                .props('preload=metadata data-testid=audio-player')
                .mark('audio-player')
            )
            if peaks := peaks_of(recording):
                Waveform(peaks, player).classes('w-full').mark('waveform')
            transcript = await run.io_bound(
                services.transcripts.get, user_id=recording.user_id, recording_id=recording.id
            )
            if transcript is not None:
                TranscriptPanel(services, recording.user_id, transcript, player, share=True)
            until = format_local_time(share.expires_at, zone) + ('' if zone else ' UTC')
            ui.label(f'This link works until {until}.').classes('text-caption vr-share-until').props(
                'data-testid=share-until'
            ).mark('share-until')
