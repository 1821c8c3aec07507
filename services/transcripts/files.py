"""A transcript as a file to download: plain text, SubRip (.srt) or WebVTT (.vtt) subtitles."""

from dataclasses import dataclass
from typing import Literal

from services.transcripts.shapes import SegmentPublic

FileKind = Literal['txt', 'srt', 'vtt']
MEDIA_TYPES: dict[str, str] = {'txt': 'text/plain', 'srt': 'text/plain', 'vtt': 'text/vtt'}


@dataclass(frozen=True)
class TranscriptFile:
    name: str
    media_type: str
    content: str


def render(kind: FileKind, segments: list[SegmentPublic]) -> str:
    if kind == 'srt':
        return srt(segments)
    if kind == 'vtt':
        return vtt(segments)
    return ''.join(f'{segment.text}\n' for segment in segments)


def timestamp(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f'{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}'


def _one_line(text: str) -> str:
    """A cue's text can never end the cue: no line breaks, no arrows."""
    return ' '.join(text.split()).replace('-->', '→')


def _cue_text(text: str) -> str:
    """WebVTT text is markup: escaped, so words are never read as tags."""
    return _one_line(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def srt(segments: list[SegmentPublic]) -> str:
    cues = [
        f'{number}\n{timestamp(s.start_ms, ",")} --> {timestamp(s.end_ms, ",")}\n{_one_line(s.text)}\n'
        for number, s in enumerate(segments, start=1)
    ]
    return '\n'.join(cues)


def vtt(segments: list[SegmentPublic]) -> str:
    cues = [f'{timestamp(s.start_ms, ".")} --> {timestamp(s.end_ms, ".")}\n{_cue_text(s.text)}\n' for s in segments]
    return '\n'.join(['WEBVTT\n', *cues])
