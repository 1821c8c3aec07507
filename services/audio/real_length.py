"""How long a file's audio really is, counted from its packets, not from the timestamps its container claims.

A container's timestamps are whatever the uploader wrote (`-bsf:a setts=ts=TS/1000` makes 252 s claim 270 ms),
while a decoder plays every packet in full. An Opus packet says in its first byte (the TOC, RFC 6716 §3.1) how
many samples it decodes to; an AAC packet is a frame of at least 1024 samples. Reading the packets, without
decoding them, costs about a second per hour of audio.
"""

from pathlib import Path

from services.audio.formats import AudioFormat
from services.core.errors import AudioProcessingFailed

OPUS_RATE = 48_000
# Samples per Opus frame (48 kHz) by TOC configuration: SILK 0–11, hybrid 12–15, CELT 16–31.
_SILK, _HYBRID, _CELT = (480, 960, 1920, 2880), (480, 960), (120, 240, 480, 960)
OPUS_FRAME_SAMPLES = tuple(_SILK[c % 4] if c < 12 else _HYBRID[c % 2] if c < 16 else _CELT[c % 4] for c in range(32))
MAX_OPUS_PACKET_SAMPLES = 5760  # 120 ms: RFC 6716 allows no longer packet


def opus_packet_samples(packet: bytes | memoryview) -> int:
    """The samples one Opus packet decodes to (at 48 kHz), read from its TOC byte and frame count."""
    if not packet:
        return 0
    toc = packet[0]
    frames = (1, 2, 2, packet[1] & 0x3F if len(packet) > 1 else 0)[toc & 0x3]
    return min(OPUS_FRAME_SAMPLES[toc >> 3] * frames, MAX_OPUS_PACKET_SAMPLES)


def packet_length_ms(path: Path, fmt: AudioFormat) -> int:
    """The audio's length from its first audio stream's packets: exact for Opus, a lower bound for AAC (HE-AAC
    frames decode to twice as much), and the container's packet durations for any other codec."""
    import av  # PyAV costs 0.1 s to import: paid by the first recording saved, not by every start-up

    try:
        with av.open(str(path), format=fmt.demuxer, options=reading_options(fmt)) as container:
            if not container.streams.audio:
                raise AudioProcessingFailed('the audio could not be processed: it holds no audio')
            stream = container.streams.audio[0]
            codec, rate = stream.codec_context.name, stream.codec_context.sample_rate or OPUS_RATE
            samples = 0
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if codec == 'opus':
                    samples += opus_packet_samples(memoryview(packet))
                elif codec == 'aac':
                    samples += 1024
                else:
                    samples += round(float((packet.duration or 0) * packet.time_base) * rate)
    except av.FFmpegError as error:
        raise AudioProcessingFailed('the audio could not be processed: its packets cannot be read') from error
    return round(samples * 1000 / (OPUS_RATE if codec == 'opus' else rate))


def reading_options(fmt: AudioFormat) -> dict[str, str]:
    """What `ffmpeg_reading` forces, as PyAV's option dict: this local file only, read as `fmt` and nothing else."""
    flags = fmt.demuxer_options
    forced = {name.lstrip('-'): value for name, value in zip(flags[::2], flags[1::2], strict=True)}
    return {'protocol_whitelist': 'file', 'format_whitelist': fmt.demuxer, **forced}
