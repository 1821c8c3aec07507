"""How long finalize takes for a 60-minute recording (3,600 chunks of ~16 KB) on local storage and on S3.

Run: .venv/bin/python bench/finalize_s3.py [--minutes 60] [--workers 1,16]

S3 is SeaweedFS (the tests' server, tests/support/s3_server.py) in a process of its own on loopback ports, reached
over HTTP exactly as the app reaches S3, checking every signature. The audio is synthetic opus in WebM (pink
noise at 128 kbit/s, so one second is ~16 KB), written to a pipe as a browser's MediaRecorder writes it. Each
case stores the chunks the way ingest leaves them (objects + rows), then times `Finalizer.finalize`: fetch
and join, ffmpeg remux, upload of the final file, deletion of the chunks. S3 runs without the local chunk
spool (what an instance that did not receive the chunks does, fetching them back with N workers) and with it
(the default: the instance that received the chunks reads them from its own disk). Prints a Markdown table.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.audio.ffmpeg import ffmpeg_executable
from services.container import Services, build_services
from services.core.config import Settings
from services.core.models import Chunk
from services.storage.keys import chunk_key
from tests.support.s3_server import CREDENTIALS, REGION, S3Server


def synthetic_opus(seconds: int, folder: Path) -> bytes:
    path = folder / f'noise-{seconds}s.webm'
    if not path.exists():
        source = f'anoisesrc=color=pink:amplitude=0.3:sample_rate=48000:duration={seconds}'
        command = [ffmpeg_executable(), '-v', 'error', '-f', 'lavfi', '-i', source, '-ac', '1']
        encoded = subprocess.run(
            [*command, '-c:a', 'libopus', '-b:a', '128k', '-f', 'webm', 'pipe:1'], check=True, capture_output=True
        )
        path.write_bytes(encoded.stdout)
    return path.read_bytes()


def store_chunks(services: Services, audio: bytes, count: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The state ingest leaves behind: one object and one row per chunk (stored in parallel to save time)."""
    user, _token = services.users.onboard(name='Bench')
    recording = services.recordings.create(user_id=user.id, mime_type='audio/webm;codecs=opus', title='60 minutes')
    size = -(-len(audio) // count)
    pieces = [audio[i : i + size] for i in range(0, len(audio), size)]
    with ThreadPoolExecutor(16) as pool:
        digests = [hashlib.sha256(piece).hexdigest() for piece in pieces]
        keys = [chunk_key(recording.id, seq, digest) for seq, digest in enumerate(digests)]
        list(pool.map(lambda seq: services.storage.put_bytes(keys[seq], pieces[seq]), range(count)))
    with services.database.session() as session:
        session.add_all(
            Chunk(recording_id=recording.id, seq=seq, size=len(piece), sha256=digests[seq])
            for seq, piece in enumerate(pieces)
        )
        session.commit()
    return user.id, recording.id


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith(f'{field}:'):
            return int(line.split()[1]) / 1024
    return float('nan')


def run_case(settings: Settings, audio: bytes, count: int) -> dict[str, float]:
    services = build_services(settings)
    try:
        user_id, recording_id = store_chunks(services, audio, count)
        Path('/proc/self/clear_refs').write_text('5')  # restart the peak-memory counter for the timed part
        before = memory_mb('VmRSS')
        started = time.perf_counter()
        ready = services.finalizer.finalize(user_id=user_id, recording_id=recording_id, chunk_count=count)
        elapsed = time.perf_counter() - started
        return {
            'seconds': elapsed,
            'duration_s': (ready.duration_ms or 0) / 1000,
            'size_mb': (ready.size_bytes or 0) / 1e6,
            'peak_mb': memory_mb('VmHWM') - before,
        }
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--minutes', type=int, default=60)
    parser.add_argument('--workers', default='1,16', help='S3 fetch concurrencies to compare')
    args = parser.parse_args()
    count = args.minutes * 60
    os.environ.update(CREDENTIALS, AWS_EC2_METADATA_DISABLED='true')
    # Services.close() does not wait for a waveform being drawn, which may still write here during the cleanup.
    with tempfile.TemporaryDirectory(prefix='vr-bench-', ignore_cleanup_errors=True) as folder_name:
        folder = Path(folder_name)
        began = time.perf_counter()
        audio = synthetic_opus(count, folder)
        print(
            f'synthetic opus: {len(audio) / 1e6:.1f} MB, {count} chunks of ~{len(audio) // count / 1000:.1f} KB '
            f'(encoded in {time.perf_counter() - began:.0f} s)',
            file=sys.stderr,
        )
        server = S3Server(folder / 'seaweedfs.log').start()
        s3 = {'storage': 's3', 's3_endpoint_url': server.url, 's3_region': REGION, 's3_path_style': True}
        cases: dict[str, dict[str, object]] = {'local folder': {}}
        for workers in (int(w) for w in args.workers.split(',')):
            cases[f'S3, no spool, {workers} at a time'] = {**s3, 's3_spool': False, 's3_max_concurrency': workers}
        cases['S3 with the local spool (default)'] = {**s3, 's3_spool': True}
        try:
            print(f'| {args.minutes}-minute recording, {count} chunks | finalize (s) | result | peak RSS growth (MB) |')
            print('|---|---|---|---|')
            for name, overrides in cases.items():
                bucket = {'s3_bucket': f'bench-{uuid.uuid4().hex[:8]}', 's3_create_bucket': True} if overrides else {}
                data_dir = folder / uuid.uuid4().hex
                settings = Settings(
                    _env_file=None,
                    data_dir=data_dir,
                    secret='bench-secret-of-at-least-32-characters',
                    **overrides,
                    **bucket,
                )
                result = run_case(settings, audio, count)
                print(f'| {name} | {result["seconds"]:.2f} | {result["duration_s"]:.0f} s of audio, '
                      f'{result["size_mb"]:.1f} MB | {result["peak_mb"]:.0f} |', flush=True)  # fmt: skip
        finally:
            server.stop()


if __name__ == '__main__':
    main()
