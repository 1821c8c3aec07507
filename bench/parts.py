"""What each benchmark runs besides the app, checked before the first measurement: a missing part is said in one
plain line at the start, not after minutes of measuring (`redis-server is not installed` at the scale-out step).

`make bench` installs them the way `make test` does (the Debian packages, when run as root); this check covers a
`python -m bench` started some other way.
"""

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.transcripts import LIBRIVOX
from services.audio.ffmpeg import ffmpeg_executable
from tests.support.postgres_server import PG_ROOT
from tests.support.s3_server import weed_executable


@dataclass(frozen=True)
class Part:
    name: str  # as the line says it
    package: str  # where it comes from: a Debian package, or the bench's Python extras
    present: Callable[[], bool]


def program(name: str, package: str | None = None) -> Part:
    return Part(name, package or name, lambda: shutil.which(name) is not None)


FFMPEG = Part('ffmpeg', 'ffmpeg', lambda: _resolves(ffmpeg_executable))  # the PATH's, else the imageio-ffmpeg wheel's
FFPROBE = program('ffprobe', 'ffmpeg')
ESPEAK = program('espeak-ng')
SOX = program('sox')
REDIS = program('redis-server')
HAPROXY = program('haproxy')
POSTGRES = Part('PostgreSQL', 'postgresql', lambda: any(PG_ROOT.glob('*/bin/initdb')))
SEAWEEDFS = Part('SeaweedFS (weed)', "the bench's Python extras: make bench", lambda: weed_executable().exists())
READING = Part('the LibriVox clips', 'pocketsphinx-testdata', lambda: (LIBRIVOX / 'transcription').exists())

SPEECH = (ESPEAK, SOX, FFMPEG, FFPROBE, READING)
NEEDS: dict[str, tuple[Part, ...]] = {
    'ingest': (FFMPEG,),
    'scale_out': (FFMPEG, POSTGRES, REDIS, HAPROXY, SEAWEEDFS),
    'finalize': (FFMPEG,),  # the naive baseline's pydub runs it too
    'imports': (FFMPEG,),
    'playback': (FFMPEG,),
    'records': (FFMPEG,),
    'footprint': (),
    'transcripts': SPEECH,
    'live': SPEECH,
    'live_ingest': SPEECH,
    'day': SPEECH,
    'background': SPEECH,
}


def _resolves(find: Callable[[], str]) -> bool:
    try:
        return Path(find()).exists()
    except (OSError, RuntimeError, ImportError):
        return False


def missing(benchmarks: Iterable[str], needs: dict[str, tuple[Part, ...]] = NEEDS) -> list[Part]:
    """The parts the chosen benchmarks need that this machine lacks, each once, in the order first needed; a
    benchmark this table does not know needs the app alone."""
    found: dict[str, Part] = {}
    for benchmark in benchmarks:
        for part in needs.get(benchmark, ()):
            if part.name not in found and not part.present():
                found[part.name] = part
    return list(found.values())


def missing_line(parts: list[Part]) -> str:
    """One plain line naming what is missing and how to get it."""
    named = ', '.join(f'{part.name} ({part.package})' for part in parts)
    packages = ' '.join(sorted({part.package for part in parts if ' ' not in part.package}))
    how = f"run 'make bench' as root, or 'sudo apt-get install {packages}'" if packages else "run 'make bench'"
    return f'cannot start the benchmarks, missing: {named}; {how}'
