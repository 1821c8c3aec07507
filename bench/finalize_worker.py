"""One finalize in a fresh process, so its peak memory is its own: `python -m bench.finalize_worker JSON`.

Prints one JSON line: seconds, the process's RSS before the work and at its peak, and the peak of its children
(ffmpeg), sampled every 5 ms. `naive` is the baseline: every chunk read into memory, pydub decode + export.
"""

import io
import json
import os
import sys
import time
import uuid
from typing import Any

from pydub import AudioSegment
from sqlmodel import col, select

from bench.servers import PeakRss
from services.audio.ffmpeg import ffmpeg_executable
from services.container import Services, build_services
from services.core.config import Settings
from services.core.models import Chunk
from services.storage.keys import chunk_key


def main() -> None:
    job = json.loads(sys.argv[1])
    services = build_services(Settings(_env_file=None, **job['settings']))
    user_id, recording_id = uuid.UUID(job['user_id']), uuid.UUID(job['recording_id'])
    cleanup = _time_chunk_cleanup(services)
    with PeakRss(os.getpid()) as memory:
        started = time.perf_counter()
        if job['naive']:
            duration_ms = naive_finalize(services, recording_id)
        else:
            recording = services.finalizer.finalize(
                user_id=user_id, recording_id=recording_id, chunk_count=job['chunks']
            )
            duration_ms = recording.duration_ms or 0
        seconds = time.perf_counter() - started
    services.close()
    result: dict[str, Any] = {
        'seconds': seconds,
        'rss_before_mb': memory.start_mb,
        'peak_mb': memory.peak_mb,
        'ffmpeg_peak_mb': memory.children_peak_mb,
        'duration_ms': duration_ms,
        'cleanup_seconds': cleanup[0],
    }
    print(json.dumps(result))


def _time_chunk_cleanup(services: Services) -> list[float]:
    """Times the chunk deletion that finalize does after the recording is already ready (playable)."""
    spent = [0.0]
    delete_prefix = services.storage.delete_prefix

    def timed(prefix: str) -> int:
        started = time.perf_counter()
        try:
            return delete_prefix(prefix)
        finally:
            spent[0] += time.perf_counter() - started

    services.storage.delete_prefix = timed  # type: ignore[method-assign]
    return spent


def naive_finalize(services: Services, recording_id: uuid.UUID) -> int:
    """What a first attempt often does: all chunks in memory, decode to PCM, re-encode; the chunks are kept."""
    with services.database.session() as session:
        query = select(Chunk.seq, Chunk.sha256).where(col(Chunk.recording_id) == recording_id).order_by(col(Chunk.seq))
        chunks = list(session.exec(query).all())
    joined = io.BytesIO()
    for seq, digest in chunks:
        services.storage.copy_to(chunk_key(recording_id, seq, digest), joined)
    joined.seek(0)
    AudioSegment.converter = ffmpeg_executable()
    audio = AudioSegment.from_file(joined, format='webm', codec='opus')
    output = io.BytesIO()
    audio.export(output, format='webm', codec='libopus', bitrate='128k')
    services.storage.put_bytes(f'recordings/{recording_id}/naive.webm', output.getvalue())
    return len(audio)


if __name__ == '__main__':
    main()
