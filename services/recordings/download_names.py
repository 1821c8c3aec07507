"""The names downloads carry (`Weekly notes – 2026-12-06.webm`) and the Content-Disposition that gives them, one
place for the audio route, the MP3, the transcript files and S3's presigned links."""

import re
import unicodedata
from urllib.parse import quote

from services.audio.formats import audio_format
from services.core.models import Recording

MAX_STEM_BYTES = 180  # file systems take 255 bytes; room for the date and the extension
_ILLEGAL = re.compile(r'[\\/:|]')  # read as separators: "A/B" → "A-B", "10:07" → "10-07"
_DROPPED = re.compile(r'[*?"<>\x00-\x1f\x7f]')  # Windows refuses them; a dash in their place reads wrong
_RESERVED = frozenset({'CON', 'PRN', 'AUX', 'NUL', *(f'{port}{i}' for port in ('COM', 'LPT') for i in range(1, 10))})


def download_name(recording: Recording, *, mp3: bool = False) -> str:
    """The audio's file name: its title and the day it was made."""
    return file_name(recording, 'mp3' if mp3 else audio_format(recording.mime_type).extension)


def transcript_download_name(recording: Recording, kind: str) -> str:
    return file_name(recording, kind)


def file_name(recording: Recording, extension: str) -> str:
    """`<title> – <day>.<extension>`; a title that holds its day already gets it once."""
    stem, day = safe_stem(recording.title), f'{recording.created_at:%Y-%m-%d}'
    return f'{stem}.{extension}' if day in stem else f'{stem} – {day}.{extension}'


def safe_stem(title: str) -> str:
    """The title as a file name on every system: separators become dashes, forbidden characters go, no dot or space
    at either end, not a device name, and short enough for the file system."""
    stem = ' '.join(_DROPPED.sub('', _ILLEGAL.sub('-', title)).split()).strip(' .')
    while len(stem.encode()) > MAX_STEM_BYTES:
        stem = stem[:-1].rstrip(' .')
    if stem.split('.')[0].upper() in _RESERVED:
        stem = f'_{stem}'
    return stem or 'Recording'


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the exact name as RFC 5987 `filename*`."""
    fallback = ascii_fallback(filename)
    exact = quote(filename, safe='')
    if exact == filename:
        return f'attachment; filename="{filename}"'
    return f'attachment; filename="{fallback}"; filename*=UTF-8\'\'{exact}'


def ascii_fallback(filename: str) -> str:
    """Accents dropped ("Café" → "Cafe"), dashes kept as "-", anything else outside ASCII as "_"."""
    folded = unicodedata.normalize('NFKD', filename.replace('–', '-').replace('—', '-'))
    kept = ''.join(ch for ch in folded if not unicodedata.combining(ch))
    return ''.join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else '_' for ch in kept)
