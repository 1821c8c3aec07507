"""The containers the app accepts: each one's demuxer, forced on every ffmpeg run, and the magic bytes its first
chunk must start with."""

from dataclasses import dataclass
from pathlib import Path

from services.core.errors import AudioProcessingFailed, InvalidInput


@dataclass(frozen=True)
class AudioFormat:
    mime_type: str
    extension: str
    label: str  # the container's name for people, in error messages
    muxer: str
    demuxer: str  # always forced: ffmpeg never guesses what it reads
    magic: bytes  # the container's signature, at `magic_offset` of its first bytes
    magic_offset: int = 0
    muxer_options: tuple[str, ...] = ()
    demuxer_options: tuple[str, ...] = ()


FORMATS = {
    'audio/webm': AudioFormat('audio/webm', 'webm', 'WebM', 'webm', 'matroska', b'\x1a\x45\xdf\xa3'),
    'audio/ogg': AudioFormat('audio/ogg', 'ogg', 'Ogg', 'ogg', 'ogg', b'OggS'),
    'audio/mp4': AudioFormat(
        'audio/mp4',
        'm4a',
        'MP4',
        'mp4',
        'mov',
        b'ftyp',
        magic_offset=4,
        muxer_options=('-movflags', '+faststart'),
        # external data references ("drefs") and alias paths would open other files
        demuxer_options=('-enable_drefs', '0', '-use_absolute_path', '0'),
    ),
}


def audio_format(mime_type: str) -> AudioFormat:
    """The container for a browser's MediaRecorder mimeType, codec parameters ignored."""
    base = mime_type.split(';', 1)[0].strip().lower()
    if base not in FORMATS:
        raise InvalidInput(f'unsupported audio type {mime_type!r}; expected one of {", ".join(FORMATS)}')
    return FORMATS[base]


def format_of_file(path: Path) -> AudioFormat:
    """The container our own file names declare, for callers that hold a path but no recording."""
    for fmt in FORMATS.values():
        if path.suffix.lower() == f'.{fmt.extension}':
            return fmt
    raise AudioProcessingFailed('the audio could not be processed: its container is unknown')


def check_container(fmt: AudioFormat, head: bytes) -> None:
    """Refuse first bytes that are not the declared container, before ffmpeg or storage ever sees them."""
    if head[fmt.magic_offset : fmt.magic_offset + len(fmt.magic)] != fmt.magic:
        raise InvalidInput(f'the first chunk is not {fmt.label} audio, as the recording declared')
