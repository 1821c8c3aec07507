"""What an imported file becomes: the file itself where browsers play it, a stream copy where its container needs
fixing (an M4A's index moved to the front, a WebM given cues, an MP4 video's audio track), else one Opus copy.

    declared            audio codec            played from                          original kept apart
    MP3                 mp3                    the file itself                      no
    FLAC                flac                   the file itself                      no
    Ogg                 opus, vorbis, flac     the file itself                      no
    WebM                opus, vorbis           stream copy (duration and cues)      yes
    M4A, MP4 video      aac, mp3, opus, alac*  stream copy into M4A, index in front yes
    WAV, anything else  -                      one Opus copy in Ogg (48 kbit/s)     yes
    (* ALAC plays in Safari only: it gets the Opus copy too)
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from services.audio.formats import FORMATS, AudioFormat
from services.audio.real_length import reading_options
from services.core.errors import AudioProcessingFailed

log = logging.getLogger(__name__)


class Playback(StrEnum):
    ORIGINAL = 'original'
    REMUX = 'remux'
    OPUS = 'opus'


# container -> the codecs browsers play from it as it is
_PLAYED_AS_IS = {'audio/mpeg': {'mp3'}, 'audio/flac': {'flac'}, 'audio/ogg': {'opus', 'vorbis', 'flac'}}
_PLAYED_AFTER_COPY = {
    'audio/webm': ('audio/webm', {'opus', 'vorbis'}),
    'audio/mp4': ('audio/mp4', {'aac', 'mp3', 'opus'}),
    'video/mp4': ('audio/mp4', {'aac', 'mp3', 'opus'}),
}
OPUS_COPY = FORMATS['audio/ogg']


@dataclass(frozen=True)
class ImportPlan:
    playback: Playback
    plays_as: AudioFormat  # the container of the file that is played


@dataclass(frozen=True)
class AudioProbe:
    codec: str
    created_at: datetime | None  # the file's own `creation_time`, when it has one


def plan_for(fmt: AudioFormat, codec: str) -> ImportPlan:
    if codec in _PLAYED_AS_IS.get(fmt.mime_type, ()):
        return ImportPlan(Playback.ORIGINAL, fmt)
    into, codecs = _PLAYED_AFTER_COPY.get(fmt.mime_type, ('', set()))
    if codec in codecs:
        return ImportPlan(Playback.REMUX, FORMATS[into])
    return ImportPlan(Playback.OPUS, OPUS_COPY)


def probe(path: Path, fmt: AudioFormat) -> AudioProbe:
    """The first audio track's codec and the file's creation time, read with the declared demuxer forced."""
    import av

    try:
        with av.open(str(path), format=fmt.demuxer, options=reading_options(fmt)) as container:
            if not container.streams.audio:
                raise AudioProcessingFailed('the file cannot be imported: it holds no audio')
            stream = container.streams.audio[0]
            stamp = container.metadata.get('creation_time') or stream.metadata.get('creation_time')
            return AudioProbe(stream.codec_context.codec.canonical_name, _parse_time(stamp))
    except av.FFmpegError as error:
        log.warning('an imported file could not be read as %s: %s', fmt.label, error)
        raise AudioProcessingFailed(f'the file cannot be imported: it is not valid {fmt.label} audio') from error


def _parse_time(stamp: str | None) -> datetime | None:
    """ISO 8601 as ffmpeg writes it (`2024-05-01T09:30:00.000000Z`); a date before 1971 is a zeroed field."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp.strip().replace('Z', '+00:00'))
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed if datetime(1971, 1, 1, tzinfo=UTC) < parsed < datetime.now(UTC) else None
