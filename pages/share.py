"""/share/<id>: the minimal public page of a shared recording: its title, length, waveform and a player."""

import uuid

from nicegui import run, ui

from pages.formatting import format_duration
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
            ui.label(f'Shared recording · {format_duration(recording.duration_ms)}').classes('text-caption')
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
