"""MP3 copies for people whose players want MP3: made once, in the background, with progress, then cached.

ffmpeg encodes straight from the stored file rather than through pydub: pydub decodes the whole recording
into memory first (1–2 GB for an hour, measured), while ffmpeg streams it in ~55 MB and reports progress.
"""

import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from .audio import audio_format, ffmpeg_executable
from .database import Database
from .errors import AudioProcessingFailed, NotFound
from .models import Recording, RecordingStatus
from .recordings import audio_key, load_owned, recording_prefix
from .storage import Storage

MP3_TYPE = 'audio/mpeg'


def mp3_key(recording: Recording) -> str:
    return f'{recording_prefix(recording.id)}audio.mp3'


class ExportService:
    def __init__(self, *, database: Database, storage: Storage, temp_dir: Path) -> None:
        self.database = database
        self.storage = storage
        self.temp_dir = temp_dir

    def mp3(
        self, *, user_id: uuid.UUID, recording_id: uuid.UUID, progress: Callable[[float], None] | None = None
    ) -> Recording:
        """Make (or find) the MP3 of a ready recording; `progress` hears fractions from 0 to 1."""
        with self.database.session() as session:
            recording = load_owned(session, user_id=user_id, recording_id=recording_id)
        if recording.status != RecordingStatus.READY:
            raise NotFound('the audio is not ready yet')
        if not self.storage.exists(mp3_key(recording)):
            self._encode(recording, progress or (lambda _: None))
        if progress:
            progress(1.0)
        return recording

    def _encode(self, recording: Recording, progress: Callable[[float], None]) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        extension = audio_format(recording.mime_type).extension
        with tempfile.TemporaryDirectory(dir=self.temp_dir, prefix='mp3-') as folder:
            source, target = Path(folder) / f'source.{extension}', Path(folder) / 'audio.mp3'
            with source.open('wb') as handle:
                self.storage.copy_to(audio_key(recording), handle)
            command = [
                ffmpeg_executable(),
                '-v',
                'error',
                '-nostdin',
                '-y',
                '-i',
                str(source),
                '-vn',
                '-ac',
                '1',
                '-c:a',
                'libmp3lame',
                '-q:a',
                '5',
                '-progress',
                'pipe:1',
                str(target),
            ]
            total_us = max(1, (recording.duration_ms or 1) * 1000)
            with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
                assert process.stdout is not None
                for line in process.stdout:
                    if line.startswith('out_time_us=') and line.strip().split('=')[1].isdigit():
                        progress(min(0.99, int(line.strip().split('=')[1]) / total_us))
            if process.returncode != 0 or not target.exists():
                raise AudioProcessingFailed('the MP3 could not be made')
            self.storage.put_file(mp3_key(recording), target)
