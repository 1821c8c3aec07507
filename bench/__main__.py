"""`python -m bench`: every benchmark against the real app on loopback, one table, bench/results.md.

Benchmarks report; they never fail on speed. Each runs in a fresh temporary workspace (data folder, NiceGUI
storage, audio) that is deleted afterwards unless --keep is given.
"""

import argparse
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from bench import (
    background,
    day,
    finalize,
    footprint,
    imports,
    ingest,
    live,
    live_ingest,
    parts,
    playback,
    records,
    scale_out,
    transcripts,
)
from bench.report import ResultsFile, Row, load_average, machine, table

Benchmark = Callable[..., Iterable[Row]]  # a list, or a generator that yields each row as it is measured
BENCHMARKS: dict[str, Benchmark] = {
    'ingest': ingest.run,
    'scale_out': scale_out.run,
    'finalize': finalize.run,
    'playback': playback.run,
    'records': records.run,
    'footprint': footprint.run,
    'transcripts': transcripts.run,
    'live': live.run,
    'live_ingest': live_ingest.run,
    'imports': imports.run,
    'day': day.run,
    'background': background.run,
}
NOTES = [
    'Ingest: each simulated recorder loads /recorder with its own signed-in browser identity (made through '
    '/onboard), joins the page over a new socket.io websocket with the `/vr` audio namespace on it (its upload token '
    'from the page) and sends `create`, then `chunk` every second; '
    'latency is send → acknowledgement, and an acknowledgement means the chunk is durable. After each run the '
    'server is SIGKILLed and every acknowledged chunk is looked up in the database and storage: "lost" counts '
    'those missing. Like the browser, a recorder sends a chunk again after a "retry" answer (busy, rate-limited) or no '
    'answer within 10 s, with backoff (0.25 s doubling to 8 s), until 30 s after the sending window; its latency runs '
    'from the first send. "Unacknowledged after the run" counts chunks that were never acknowledged. '
    'The load generator runs in 2 processes on the same 2 cores; its CPU and how late it sent (send lag) are shown '
    'so a saturated generator is visible.',
    'Ingest, 2 instances: the same load and loss check through HAProxy (docs/haproxy.cfg, sticky cookie carried '
    'from the page into its websocket) to two app instances sharing one PostgreSQL, one SeaweedFS bucket and one '
    'Redis, all on the same 2 cores; identities are made through this stack, both instances are SIGKILLed after '
    'each level and the loss counted against PostgreSQL and the bucket; "other parts" is the CPU of PostgreSQL, '
    "SeaweedFS, Redis and HAProxy together. PostgreSQL is the tests' throwaway server, which runs with fsync off. "
    '"1c … one data folder" is the same with the embedded defaults shared instead: both instances on one data dir '
    '(one SQLite file in WAL mode, fsync on, and one local audio folder), Redis and HAProxy; each instance keeps '
    'its own NiceGUI folder and log.',
    'Finalize: the chunks are stored through the real chunk service first; the timed part is the real '
    '`Finalizer.finalize` in a fresh process; its peak RSS and that of its ffmpeg child are sampled every 5 ms. The '
    'storage backend comes from the `VR_*` settings, so another backend plugs in as one more entry in '
    '`bench/finalize.py` BACKENDS (only local exists yet). The naive baseline decodes with pydub and re-encodes '
    'to WebM/opus at 128 kbit/s.',
    'The bare socket.io baselines run on uvicorn with websockets-sansio, as the app does since it starts uvicorn '
    'itself (NiceGUI\'s `ui.run` pins the pure-Python `wsproto`). "bare + append + fsync" appends each chunk to its '
    "recording's file and fsyncs it in a thread before acknowledging: the least a durable server does.",
    'Playback: a new connection per request, timed to the first body bytes. Records page: time until the list is '
    'on the page (in the first HTML, or HTML plus the websocket update that brings it).',
    'Transcripts: WER is word errors (substitutions, insertions, deletions) over reference words, after lower-casing '
    'and removing punctuation; real-time factor is compute time over audio time (0.1: an hour in 6 minutes). Human '
    "reading: the LibriVox clips of Debian's pocketsphinx-testdata with their transcripts. The worker figure is a real "
    '`python main.py worker` process transcribing one long espeak recording, model load included.',
    'Live: every stream is real speech (LibriVox reading and espeak-ng sentences, ≥ 60 s, pauses of 0.3-1 s between '
    'sentences) as WebM/Opus cut into 1-second chunks at its packet timestamps, fed in real time (one chunk a second '
    'per stream, the streams spread over the second) to `LiveStream`s run by one `LiveScheduler` with Whisper base on '
    "2 compute threads in this process. A word's delay runs from its end in the audio (word times of a full pass of "
    'the same audio, made before) to the moment the engine returned it, so the wait for its 1-second chunk counts; '
    "live words are matched to the full pass's in order. CPU is this process and its ffmpeg children; what other "
    'processes used meanwhile is shown, since it slows the engine. "Cut at pauses only" is the measured starting '
    'point: each stretch of speech heard once when a pause ends it.',
    'Live beside ingest: the real app with its embedded workers (Whisper base); 4 REST clients do what /recorder '
    'does (ask for live words, send a 1-second chunk of a live stream each second, read new words every 0.25 s as '
    "the page reads them; a word's delay runs to the read that returned it) while the ingest benchmark's 100 "
    'recorders send over the websocket; the same recorders alone first, in the same run.',
    'Imports: a tone MP3 (64 kbit/s mono) imported through the REST API as a script or the browser does: create '
    "with the file's size, its 512 KiB chunks read from the file one at a time, at most 4 waiting for their "
    'acknowledgement, then finalize (an MP3 is played as it came: joined, its packets counted, stored). The web '
    "process's RSS is sampled every 5 ms from before the first chunk to the finalize's answer. The baseline is the "
    'same bytes as one streamed HTTP PUT to a bare starlette endpoint writing them to disk and fsyncing.',
    'Day: one app as a self-hoster runs it (embedded workers, Whisper base). 100 recorders (the ingest clients) make '
    'recordings one after another, nine in ten of 1-6 minutes and one in ten of 30-60, each ended by Stop (`finalize`'
    ' over the websocket, timed until the answer that it is playable) and followed by a 5-30 s pause; one recorder in'
    ' 50 speaks (espeak and LibriVox sentences), the others send pink noise, which the voice detection skips: about '
    'as much speech as 2 cores hear with Whisper base beside the recording (bench/day.py says why). 10 listeners (API'
    ' users with two spoken recordings each) act every 5-25 s: list, play, seek (first bytes), search a word, make an'
    " MP3, or load a recorder's /records page until its list shows. Transcript lag runs from the job's queueing at "
    "Stop to its end; the backlog (transcripts queued or under way) is sampled every 30 s with the web process's RSS,"
    ' threads and open files. The baseline is the same recorders sending chunks with nothing else going on, on the '
    'same server first. Then shorter runs with more recorders, while the goals hold. The server is SIGKILLed at the '
    "end: a finished recording counts as lost unless it is playable with all its chunks; the others' acknowledged "
    'chunks are sought.',
    'Background: 200 recorders (the ingest clients) with the transcript workers idle, then with 4 ten-minute spoken '
    'recordings queued for them and their MP3 copies asked for (web-process ffmpeg) while the recorders send; the same '
    'run for each VR_BACKGROUND_PRIORITY, each on a fresh app start.',
]


SOAK_MINUTES = 120


def say(text: str) -> None:
    print(f'… {text}', flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__)
    parser.add_argument('--quick', action='store_true', help='fewer and shorter cases, about two minutes')
    parser.add_argument('--only', choices=BENCHMARKS, action='append', help='run only these benchmarks')
    parser.add_argument('--keep', action='store_true', help='keep the temporary workspace')
    parser.add_argument(
        '--soak', action='store_true', help='only the soak: the day (mixed load) for two hours, then the background row'
    )
    parser.add_argument('--soak-minutes', type=int, default=SOAK_MINUTES, help=f'the soak (default {SOAK_MINUTES})')
    day_default = f'default {day.DAY_S // 60}, quick {day.QUICK_DAY_S // 60}'
    parser.add_argument('--day-minutes', type=int, help=f'how long the day runs ({day_default})')
    parser.add_argument(
        '--trace-memory',
        action='store_true',
        help='only the day, its app under tracemalloc: what grew goes to bench/memory.md (its latencies are off)',
    )
    args = parser.parse_args()
    chosen = ['day'] if args.trace_memory else ['day', 'background'] if args.soak else args.only or list(BENCHMARKS)
    lacking = parts.missing(chosen)
    if lacking:  # said before the first measurement, not minutes into the run
        print(parts.missing_line(lacking), file=sys.stderr)
        sys.exit(1)
    load_at_start = load_average()
    workspace = Path(tempfile.mkdtemp(prefix='vr-bench-'))
    print(f'machine: {machine()}, load average {load_at_start}\nworkspace: {workspace}', flush=True)
    mode = 'soak' if args.soak else 'quick' if args.quick else 'partial' if args.only or args.trace_memory else 'full'
    results = ResultsFile(mode=mode, notes=NOTES, load_at_start=load_at_start)
    try:
        failed = run_all(chosen, results, workspace, args)
    finally:
        if not args.keep:
            shutil.rmtree(workspace, ignore_errors=True)
    print(table(results.rows))
    path = results.write(f'stopped: {", ".join(failed)} failed' if failed else '')
    print(f'written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}')
    sys.exit(1 if failed else 0)


def run_all(chosen: list[str], results: ResultsFile, workspace: Path, args: argparse.Namespace) -> list[str]:
    """Each benchmark's rows go to the file as they come; one that fails is said (row and traceback) and the others
    still run. Returns the names of those that failed."""
    failed = []
    for name in chosen:
        try:
            measured: Iterable[Row]
            minutes = args.soak_minutes if getattr(args, 'soak', False) else getattr(args, 'day_minutes', None)
            trace_memory = getattr(args, 'trace_memory', False)
            if name == 'day' and (minutes or trace_memory):
                seconds = minutes * 60 if minutes else None
                measured = day.run(workspace, quick=args.quick, say=say, seconds=seconds, trace_memory=trace_memory)
            else:
                measured = BENCHMARKS[name](workspace, quick=args.quick, say=say)
            for row in measured:  # a generator gives its rows as it measures them
                results.add(row)
        except Exception as error:  # the rows so far are kept; the next benchmark still runs
            traceback.print_exc()
            failed.append(name)
            said = ' '.join(f'{type(error).__name__}: {error}'.split()).replace('|', '/')  # one table cell
            results.add(Row(name, 'stopped', 'failed', '', said))
    return failed


if __name__ == '__main__':
    main()
