"""The containers the app accepts: each one's demuxer, forced on every ffmpeg run, and the magic bytes its first
chunk must start with. Recorders send WebM, Ogg and MP4; imported files may also be MP3, WAV, FLAC or MP4 video."""

from dataclasses import dataclass
from pathlib import Path

from services.core.errors import AudioProcessingFailed, InvalidInput

Signature = tuple[tuple[int, bytes], ...]  # (offset, bytes) pairs that must all match


@dataclass(frozen=True)
class AudioFormat:
    mime_type: str
    extension: str
    label: str  # the container's name for people, in error messages
    muxer: str
    demuxer: str  # always forced: ffmpeg never guesses what it reads
    signatures: tuple[Signature, ...]  # its first bytes match one of these (an MP3 with or without an ID3 tag)
    muxer_options: tuple[str, ...] = ()
    demuxer_options: tuple[str, ...] = ()


_MP4_DEMUXER_OPTIONS = ('-enable_drefs', '0', '-use_absolute_path', '0')  # external data references open other files
# An MP3 starts with its ID3 tag or straight with an MPEG audio frame: 11 sync bits, then version and layer III.
_MPEG_FRAME_SYNCS = tuple(((0, bytes((0xFF, second))),) for second in (0xFB, 0xFA, 0xF3, 0xF2, 0xE3, 0xE2))
_FTYP = (((4, b'ftyp'),),)

FORMATS = {
    'audio/webm': AudioFormat('audio/webm', 'webm', 'WebM', 'webm', 'matroska', (((0, b'\x1a\x45\xdf\xa3'),),)),
    'audio/ogg': AudioFormat('audio/ogg', 'ogg', 'Ogg', 'ogg', 'ogg', (((0, b'OggS'),),)),
    'audio/mp4': AudioFormat(
        'audio/mp4',
        'm4a',
        'MP4',
        'mp4',
        'mov',
        _FTYP,
        muxer_options=('-movflags', '+faststart'),
        demuxer_options=_MP4_DEMUXER_OPTIONS,
    ),
    'audio/mpeg': AudioFormat('audio/mpeg', 'mp3', 'MP3', 'mp3', 'mp3', (((0, b'ID3'),), *_MPEG_FRAME_SYNCS)),
    'audio/wav': AudioFormat('audio/wav', 'wav', 'WAV', 'wav', 'wav', (((0, b'RIFF'), (8, b'WAVE')),)),
    'audio/flac': AudioFormat('audio/flac', 'flac', 'FLAC', 'flac', 'flac', (((0, b'fLaC'),),)),
    'video/mp4': AudioFormat(
        'video/mp4', 'mp4', 'MP4 video', 'mp4', 'mov', _FTYP, demuxer_options=_MP4_DEMUXER_OPTIONS
    ),
}
# What browsers and tools call the same containers (a File's `type` differs between browsers).
ALIASES = {
    'audio/mp3': 'audio/mpeg',
    'audio/x-mp3': 'audio/mpeg',
    'audio/x-wav': 'audio/wav',
    'audio/wave': 'audio/wav',
    'audio/vnd.wave': 'audio/wav',
    'audio/x-flac': 'audio/flac',
    'audio/x-m4a': 'audio/mp4',
    'audio/m4a': 'audio/mp4',
    'audio/opus': 'audio/ogg',
    'video/webm': 'audio/webm',
}
# Text that points ffmpeg at other files or URLs: never audio, whatever the file is called.
_PLAYLIST_STARTS = (b'#EXTM3U', b'#EXT-X-', b'[playlist]', b'ffconcat', b'<?xml', b'<MPD', b'<smil', b'file ')


def audio_format(mime_type: str) -> AudioFormat:
    """The container for a browser's MediaRecorder mimeType or a file's type, codec parameters ignored."""
    base = mime_type.split(';', 1)[0].strip().lower()
    base = ALIASES.get(base, base)
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
    if head.lstrip(b'\xef\xbb\xbf \t\r\n').startswith(_PLAYLIST_STARTS):
        raise InvalidInput('this file is a playlist or a list of other files, not audio: import the audio file itself')
    for signature in fmt.signatures:
        if all(head[offset : offset + len(magic)] == magic for offset, magic in signature):
            return
    raise InvalidInput(f'the first chunk is not {fmt.label} audio, as the recording declared')
