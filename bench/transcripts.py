"""6. Transcripts: each shipped model's speed and accuracy, the worker's memory, and search over 10,000 transcripts.

Accuracy of tiny.en and base (the default) on real human reading (LibriVox clips with their transcripts, from Debian's
`pocketsphinx-testdata`) and on espeak speech, sent through our own path (WebM/opus as a browser sends it, decoded by
the forced-format ffmpeg run, with the quality guards). Baseline: faster-whisper's own decoder (PyAV) on the original
file, with the same options but not our guards. Search: `TranscriptService.search` on SQLite
(FTS5); baseline: a `LIKE '%word%'` scan over the same transcripts.
"""

import os
import re
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from sqlalchemy import insert, text

from bench.finalize import ROOT, open_services, settings_fields
from bench.report import Row, median, percentile
from bench.servers import PeakRss
from services.audio.ffmpeg import ffmpeg_executable
from services.audio.formats import FORMATS
from services.core.models import Recording, RecordingStatus, Transcript, TranscriptState
from services.transcripts.engine import Segment, Transcriber, Word
from services.transcripts.models import BUNDLED_MODELS, load_model, model_folder
from services.transcripts.shapes import encode
from tests.support.audio_samples import require

LIBRIVOX = Path('/usr/share/pocketsphinx/test/data/librivox')
PARAGRAPH = (
    'Seven pelicans flew across the harbour at noon, looking for sardines. Please remember to buy apples, bread and '
    'cheese tomorrow morning. The library opens at nine and closes early on Sundays. Our meeting about the garden '
    'project moved to Thursday afternoon. A gentle breeze carried the smell of fresh coffee down the street.'
)
SEARCH_SIZE = 10_000
SEARCH_RUNS = 20
CHUNK = 16 * 1024
NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten']


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    rows = []
    for name in BUNDLED_MODELS:
        rows += _model_accuracy(workspace, name, say)
    minutes = 2 if quick else 12
    say(f'transcripts: the worker process on {minutes} minutes of speech')
    rows.append(_worker_memory(workspace / 'worker', minutes))
    say(f'transcripts: seeding {SEARCH_SIZE:,} transcripts for search')
    rows += _search(workspace / 'search', quick)
    return rows


def _model_accuracy(workspace: Path, name: str, say: Callable[[str], None]) -> list[Row]:
    say(f'transcripts: loading {name}')
    started = time.perf_counter()
    transcriber = Transcriber(load_model(model_folder(BUNDLED_MODELS[name], workspace / 'models')))
    load_s = time.perf_counter() - started
    rows = []
    if (LIBRIVOX / 'transcription').exists():
        say(f'transcripts: {name} on LibriVox human reading')
        rows.append(_accuracy(name, 'real human reading (LibriVox, 5 clips)', _librivox(), transcriber, load_s))
    else:
        rows.append(Row('6 transcripts', 'real human reading', 'not measured: apt-get install pocketsphinx-testdata'))
    say(f'transcripts: {name} on espeak speech')
    spoken = [(_espeak(workspace, PARAGRAPH), PARAGRAPH)]
    rows.append(_accuracy(name, 'espeak speech (5 sentences)', spoken, transcriber, load_s))
    return rows


def normalized(sentence: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]+", ' ', sentence.lower().replace('-', ' ')).split()
    spelled = {'mr': 'mister', 'mrs': 'missus', 'harbor': 'harbour', **{str(i): w for i, w in enumerate(NUMBERS)}}
    return [spelled.get(word, word) for word in words]


def word_errors(reference: list[str], heard: list[str]) -> int:
    """Levenshtein distance in words: substitutions, insertions and deletions."""
    row = list(range(len(heard) + 1))
    for i, expected in enumerate(reference, start=1):
        previous, row[0] = row[0], i
        for j, got in enumerate(heard, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (expected != got))
    return row[-1]


def _librivox() -> list[tuple[Path, str]]:
    clips = []
    for line in (LIBRIVOX / 'transcription').read_text().splitlines():
        match = re.fullmatch(r'<s> (.*) </s> \((.*)\)', line.strip())
        if match:
            clips.append((LIBRIVOX / f'{match.group(2)}.wav', match.group(1)))
    return clips


def _espeak(workspace: Path, sentence: str) -> Path:
    raw, wav = workspace / 'espeak.raw.wav', workspace / 'espeak.wav'
    subprocess.run([require('espeak-ng'), '-s', '150', '-w', str(raw), sentence], check=True, capture_output=True)
    subprocess.run([require('sox'), str(raw), '-r', '48000', '-c', '1', str(wav)], check=True, capture_output=True)
    return wav


def _as_browser_webm(wav: Path) -> Path:
    target = wav.with_suffix('.webm')
    command = [ffmpeg_executable(), '-v', 'error', '-y', '-i', str(wav), '-c:a', 'libopus', '-b:a', '32k', str(target)]
    subprocess.run(command, check=True, capture_output=True)
    return target


def _accuracy(model: str, case: str, clips: list[tuple[Path, str]], transcriber: Transcriber, load_s: float) -> Row:
    ours = baseline = audio_s = 0.0
    errors = {'ours': 0, 'baseline': 0}
    reference_words = 0
    for wav, reference in clips:
        duration_s = _duration_s(wav)
        webm = _as_browser_webm(wav)
        started = time.perf_counter()
        segments = transcriber.transcribe_file(
            webm, FORMATS['audio/webm'], language='en', duration_ms=int(duration_s * 1000), timeout_s=600
        ).segments
        ours += time.perf_counter() - started
        started = time.perf_counter()
        found, _info = transcriber.model.transcribe(str(wav), language='en', **transcriber.decoding.options())
        theirs = ' '.join(segment.text for segment in found)
        baseline += time.perf_counter() - started
        expected = normalized(reference)
        reference_words += len(expected)
        errors['ours'] += word_errors(expected, normalized(' '.join(w.text for s in segments for w in s.words)))
        errors['baseline'] += word_errors(expected, normalized(theirs))
        audio_s += duration_s
    return Row(
        '6 transcripts',
        f'{model}: {case}, {audio_s:.1f} s of audio',
        f'WER **{100 * errors["ours"] / reference_words:.1f} %**, real-time factor **{ours / audio_s:.3f}**',
        f'PyAV decode of the original: WER {100 * errors["baseline"] / reference_words:.1f} %, '
        f'RTF {baseline / audio_s:.3f}',
        f'{reference_words} reference words; Whisper {model} int8, 1 thread, beam 5; model load {load_s:.2f} s',
    )


def _duration_s(wav: Path) -> float:
    with wave.open(str(wav)) as audio:
        return audio.getnframes() / audio.getframerate()


def _worker_memory(workspace: Path, minutes: int) -> Row:
    """One long recording through a real worker process (`python main.py worker`), its RSS sampled throughout."""
    workspace.mkdir(parents=True, exist_ok=True)
    data = _as_browser_webm(_espeak(workspace, ' '.join([PARAGRAPH] * max(1, round(minutes * 60 / 22))))).read_bytes()
    services = open_services(workspace)
    env = {k: v for k, v in os.environ.items() if not k.startswith('VR_')}
    env |= {f'VR_{name.upper()}': str(value) for name, value in settings_fields(workspace, 'local').items()}
    env['VR_TRANSCRIBE_WORKERS'] = '1'  # one worker, in the process measured (more would be its child processes)
    command = [sys.executable, 'main.py', 'worker']
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        user_id = services.users.onboard(name='Transcript bench')[0].id
        recording = services.recordings.create(user_id=user_id, mime_type='audio/webm', title='Long')
        for seq, start in enumerate(range(0, len(data), CHUNK)):
            piece = data[start : start + CHUNK]
            services.chunks.add_chunk(user_id=user_id, recording_id=recording.id, seq=seq, data=piece)
        time.sleep(3)  # the worker has started and is idle: the model loads at its first job
        idle_mb = psutil.Process(worker.pid).memory_info().rss / 2**20
        with PeakRss(worker.pid, interval_s=0.02) as memory:
            ready = services.finalizer.finalize(user_id=user_id, recording_id=recording.id)  # queues the job
            started = time.perf_counter()
            done = (TranscriptState.DONE, TranscriptState.FAILED)
            while (state := services.transcripts.get(user_id=user_id, recording_id=recording.id).state) not in done:
                time.sleep(0.2)
            took = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        services.close()
    audio_s = (ready.duration_ms or 0) / 1000
    return Row(
        '6 transcripts',
        f'worker process (Whisper base), one {audio_s / 60:.0f}-minute recording ({state.value})',
        f'peak RSS **{memory.peak_mb:.0f} MB**, ffmpeg {memory.children_peak_mb:.0f} MB; queued → done {took:.0f} s '
        f'(RTF {took / audio_s:.3f})',
        f'the same worker idle: {idle_mb:.0f} MB',
        'includes the model load and up to 2 s until the worker looks; audio read in 2-minute windows from one '
        'ffmpeg run; nice 10',
    )


def _search(workspace: Path, quick: bool) -> list[Row]:
    services = open_services(workspace)
    try:
        user_id = services.users.onboard(name='Search bench')[0].id
        vocabulary = _seed(services, user_id)
        runs = SEARCH_RUNS // 2 if quick else SEARCH_RUNS
        rows = []
        for what, query in (
            ('a common word', vocabulary[0]),
            ('a rare word', vocabulary[-1]),
            ('two words', f'{vocabulary[3]} {vocabulary[40]}'),
        ):
            timings, found = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                found = len(services.transcripts.search(user_id=user_id, query=query, limit=50))
                timings.append((time.perf_counter() - started) * 1000)
            scan = []
            with services.database.session() as session:
                for _ in range(max(3, runs // 4)):
                    started = time.perf_counter()
                    session.exec(
                        text('SELECT count(*) FROM transcript WHERE text LIKE :p').bindparams(p=f'%{query.split()[0]}%')
                    ).one()  # type: ignore[call-overload]
                    scan.append((time.perf_counter() - started) * 1000)
            rows.append(
                Row(
                    '6 transcripts',
                    f'search {SEARCH_SIZE:,} transcripts on SQLite: {what}',
                    f'median **{median(timings):.1f} ms**, p95 {percentile(timings, 0.95):.1f} ms ({found} hits shown)',
                    f"LIKE '%word%' scan: median {median(scan):.1f} ms",
                    'goal ≤ 50 ms; ranked, with snippets and the time of the first match for the page of 50',
                )
            )
        return rows
    finally:
        services.close()


def _seed(services: Any, user_id: uuid.UUID) -> list[str]:
    """10,000 ready recordings with ~200-word transcripts drawn from a Zipf-like vocabulary, most frequent first."""
    rng = np.random.default_rng(7)
    syllables = ['ka', 'lo', 'mi', 'ter', 'sun', 'ra', 'ven', 'do', 'pel', 'is', 'an', 'gor', 'tu', 'bre', 'shi']
    vocabulary = sorted({''.join(rng.choice(syllables, size=3)) for _ in range(6000)})[:5000]
    weights = 1 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    now = datetime.now(UTC)
    recordings, transcripts = [], []
    for i in range(SEARCH_SIZE):
        recording_id, created = uuid.uuid4(), now - timedelta(minutes=i)
        words = [str(w) for w in rng.choice(vocabulary, size=200, p=weights)]
        segments = [
            Segment(
                j * 10_000,
                j * 10_000 + 9_000,
                tuple(
                    Word(j * 10_000 + k * 450, j * 10_000 + k * 450 + 400, w)
                    for k, w in enumerate(words[j * 20 : j * 20 + 20])
                ),
            )
            for j in range(10)
        ]
        body, stored = encode(segments, 100_000)
        recordings.append(
            {
                'id': recording_id,
                'user_id': user_id,
                'title': f'Seeded recording {i}',
                'mime_type': 'audio/webm',
                'status': RecordingStatus.READY,
                'created_at': created,
                'updated_at': created,
                'duration_ms': 100_000,
                'size_bytes': 400_000,
            }
        )
        transcripts.append(
            {
                'recording_id': recording_id,
                'state': TranscriptState.DONE,
                'progress': 1.0,
                'language': 'en',
                'text': body,
                'segments': stored,
                'attempts': 1,
                'generation': 1,
                'queued_at': created,
                'created_at': created,
                'updated_at': created,
            }
        )
    with services.database.session() as session:
        session.exec(insert(Recording), params=recordings)  # type: ignore[call-overload]
        session.exec(insert(Transcript), params=transcripts)  # type: ignore[call-overload]
        session.commit()
    return [str(word) for word in vocabulary]
