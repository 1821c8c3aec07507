"""8. Live transcript: how far behind speech its words are committed, at 1, 2, 4 and 8 simultaneous recordings.

Each stream is real speech (the LibriVox clips of Debian's `pocketsphinx-testdata` with espeak-ng between them, in a
different order per stream, pauses of 0.3-1 s between sentences, ≥ 60 s), encoded as a browser sends it (WebM/Opus,
cut into 1-second chunks at its packets' timestamps, as MediaRecorder's timeslice does) and fed in real time, one chunk
a second per stream, the streams' seconds spread over the second. Everything runs through `LiveScheduler` on one
compute thread per core with Whisper base. A word's delay runs from its end in the audio (the word times of a full
pass of the same audio, done before the timed part) to the moment the engine returned it; words are matched to the
reference in order.
"""

import difflib
import resource
import subprocess
import time
import wave
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.report import Row, median, percentile
from bench.transcripts import LIBRIVOX, PARAGRAPH
from services.audio.formats import FORMATS
from services.transcripts.decoding import spoken_form
from services.transcripts.engine import SAMPLE_RATE, Transcriber
from services.transcripts.live import CutPolicy, LivePiece, LiveStream
from services.transcripts.live_scheduler import LiveScheduler
from services.transcripts.models import BUNDLED_MODELS, DEFAULT_MODEL, load_model, model_folder
from tests.support.audio_samples import live_webm, require

LEVELS, QUICK_LEVELS = (1, 2, 4, 8), (1, 4)
STREAM_S, QUICK_STREAM_S = 60, 30
DISTINCT = 4  # different recordings; stream i plays number i % DISTINCT
THREADS = 2
GRACE_S = 20.0  # after its last chunk, how long a stream's last words may take
BASELINE_LEVELS = (1, 4)
PAUSES_ONLY = CutPolicy(max_piece_s=float('inf'), context_ms=0)  # the measured starting point: each piece once


class Recording:
    """One stream's audio as the browser sends it, and the words a full pass hears in it."""

    def __init__(self, webm: Path, seconds: float, reference: list[tuple[str, int]]) -> None:
        self.chunks = time_chunks(webm)
        self.seconds = seconds
        self.reference = reference  # (spoken word, end ms)


class Counting:
    """The model, counting the calls made of it."""

    def __init__(self, model: Any) -> None:
        self.wrapped, self.model, self.calls = model, model.model, 0
        self.encoder_window = model.encoder_window  # the live pieces' (encoder_window.py)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.wrapped.transcribe(*args, **kwargs)

    def detect_language(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.wrapped.detect_language(*args, **kwargs)


def run(workspace: Path, *, quick: bool, say: Callable[[str], None]) -> list[Row]:
    say('live: loading Whisper base; making the streams and their reference transcripts')
    # one CTranslate2 worker per compute thread: otherwise calls from two threads queue for one
    model = Counting(load_model(model_folder(BUNDLED_MODELS[DEFAULT_MODEL], workspace / 'models'), workers=THREADS))
    recordings = [recording(workspace, i, QUICK_STREAM_S if quick else STREAM_S, model) for i in range(DISTINCT)]
    rows = []
    for count in QUICK_LEVELS if quick else LEVELS:
        say(f'live: {count} simultaneous recordings, {recordings[0].seconds:.0f} s each, in real time')
        ours = level(count, recordings, model, CutPolicy())
        baseline = None
        if count in BASELINE_LEVELS and not quick:
            say('live: the same, cut at pauses only (the baseline)')
            baseline = level(count, recordings, model, PAUSES_ONLY)
        rows.append(row(count, ours, baseline))
    return rows


def recording(workspace: Path, index: int, seconds: float, model: Any) -> Recording:
    folder = workspace / 'live'
    folder.mkdir(parents=True, exist_ok=True)
    wav = folder / f'stream-{index}.wav'
    samples = speech_sequence(folder, index, seconds)
    with wave.open(str(wav), 'wb') as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((samples * 32767).astype('<i2').tobytes())
    webm = folder / f'stream-{index}.webm'
    live_webm(wav, webm)
    length_s = samples.size / SAMPLE_RATE
    heard = Transcriber(model).transcribe_file(
        webm, FORMATS['audio/webm'], language='en', duration_ms=int(length_s * 1000), timeout_s=600
    )
    reference = [(token(w.text), w.end_ms) for s in heard.segments for w in s.words if token(w.text)]
    return Recording(webm, length_s, reference)


def speech_sequence(folder: Path, index: int, seconds: float) -> np.ndarray:
    """Sentences read by people and by espeak-ng, in an order of this stream's own, with pauses between them."""
    clips = [read_wav(path) for path in sorted(LIBRIVOX.glob('*.wav'))]
    sentences_said = [sentence.rstrip('.') + '.' for sentence in PARAGRAPH.split('. ')]
    espeak = [read_wav(espeak_wav(folder, sentence, n)) for n, sentence in enumerate(sentences_said)]
    sentences = [clip for pair in zip(clips, espeak, strict=True) for clip in pair]
    rng = np.random.default_rng(index)
    parts, total, turn = [np.zeros(SAMPLE_RATE // 2, np.float32)], 0.0, index
    while total < seconds:
        sentence = sentences[turn % len(sentences)]
        pause = np.zeros(int(rng.uniform(0.3, 1.0) * SAMPLE_RATE), np.float32)
        parts += [sentence, pause]
        total, turn = total + (sentence.size + pause.size) / SAMPLE_RATE, turn + 3
    parts.append(np.zeros(2 * SAMPLE_RATE, np.float32))  # the speaker stops: the last words end with a pause
    return np.concatenate(parts)


def espeak_wav(folder: Path, sentence: str, number: int) -> Path:
    raw, wav = folder / f'espeak-{number}.raw.wav', folder / f'espeak-{number}.wav'
    subprocess.run([require('espeak-ng'), '-s', '150', '-w', str(raw), sentence], check=True, capture_output=True)
    subprocess.run([require('sox'), str(raw), '-r', str(SAMPLE_RATE), '-c', '1', str(wav)], check=True)
    return wav


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (SAMPLE_RATE, 1, 2), path
        return np.frombuffer(clip.readframes(clip.getnframes()), '<i2').astype(np.float32) / 32768


def time_chunks(webm: Path) -> list[bytes]:
    """The file cut as MediaRecorder's 1-second timeslice cuts it: chunk k holds the packets of second k."""
    command = [require('ffprobe'), '-v', 'error', '-show_entries', 'packet=pts_time,pos', '-of', 'csv=p=0', str(webm)]
    packets = [line.split(',')[:2] for line in subprocess.run(command, capture_output=True, text=True).stdout.split()]
    data, bounds, second = webm.read_bytes(), [0], 1
    for pts, pos in packets:
        if float(pts) >= second:
            bounds.append(int(pos))
            second += 1
    return [data[a:b] for a, b in zip(bounds, [*bounds[1:], len(data)], strict=True)]


def token(word: str) -> str:
    return spoken_form(word).replace(' ', '')


@dataclass(frozen=True)
class Level:
    delays: list[float]
    cpu_per_audio_s: float
    matched: float  # of the reference words
    reference_words: int
    extra_words: int  # live words matching none
    calls: int
    audio_s: float
    longest_wait_s: float
    over_capacity: float  # share of the time the scheduler said so
    skipped_s: float
    broken: int
    heard_every_s: float
    others_cores: float  # CPU that other processes on the machine used meanwhile, in cores

    def kept_up(self) -> bool:
        return not self.over_capacity and not self.skipped_s and not self.broken


def level(count: int, recordings: list[Recording], model: Counting, policy: CutPolicy) -> Level:
    commits: dict[Hashable, list[tuple[float, str]]] = {i: [] for i in range(count)}
    broken: list[str] = []

    def heard(key: Hashable, pieces: list[LivePiece]) -> None:
        now = time.monotonic()
        commits[key] += [(now, token(w.text)) for piece in pieces for w in piece.words if token(w.text)]

    # as many streams as asked for, past the default capacity on purpose
    scheduler = LiveScheduler(on_pieces=heard, on_broken=lambda _k, e: broken.append(str(e)), max_streams=count)
    plays = [recordings[i % DISTINCT] for i in range(count)]
    streams = [LiveStream(model, FORMATS['audio/webm'], policy=policy) for _ in range(count)]
    calls_before, cpu_before, busy_before, wall_before = model.calls, cpu_seconds(), busy_seconds(), time.monotonic()
    scheduler.start()
    for i, stream in enumerate(streams):
        scheduler.add(i, stream)
    started = time.monotonic() + 0.5
    starts = [started + i / count for i in range(count)]  # each stream's recording began here
    sends = sorted((starts[i] + k + 1, i, k) for i, play in enumerate(plays) for k in range(len(play.chunks)))
    lags, over = feed_in_real_time(sends, streams, plays, scheduler)
    settle(scheduler, time.monotonic() + GRACE_S)
    skipped_ms = sum(stream.skipped_ms for stream in streams)
    scheduler.stop()
    cpu = cpu_seconds() - cpu_before
    others = (busy_seconds() - busy_before - cpu) / (time.monotonic() - wall_before)
    delays, matched, extra = [], 0, 0
    for i, play in enumerate(plays):
        found = matches(play.reference, commits[i])
        delays += [at - (starts[i] + end_ms / 1000) for end_ms, at in found]
        matched, extra = matched + len(found), extra + len(commits[i]) - len(found)
    audio_s, reference = sum(play.seconds for play in plays), sum(len(play.reference) for play in plays)
    return Level(
        delays,
        cpu / audio_s,
        matched / max(1, reference),
        reference,
        extra,
        model.calls - calls_before,
        audio_s,
        max(lags, default=0.0),
        over / max(1, len(lags)),
        skipped_ms / 1000,
        len(broken),
        policy.max_piece_s * max(1.0, count / THREADS),
        max(0.0, others),
    )


def row(count: int, ours: Level, baseline: Level | None) -> Row:
    return Row(
        '8 live',
        f'{count} live recording{"s" if count > 1 else ""} at once (Whisper base, {THREADS} compute threads)',
        f'delay p50 **{median(ours.delays):.1f} s**, p95 **{percentile(ours.delays, 0.95):.1f} s**; '
        f'**{ours.cpu_per_audio_s:.2f} CPU-s per audio-s**; kept up: **{"yes" if ours.kept_up() else "no"}**',
        f'cut at pauses only: p50 {median(baseline.delays):.1f} s, p95 {percentile(baseline.delays, 0.95):.1f} s, '
        f'{baseline.cpu_per_audio_s:.2f} CPU-s per audio-s, words matched {100 * baseline.matched:.1f} %'
        if baseline
        else '',
        f'words matched {100 * ours.matched:.1f} % of {ours.reference_words} ({ours.extra_words} extra); '
        f'{ours.calls} Whisper calls for {ours.audio_s:.0f} s of audio; speech going on heard every '
        f'{ours.heard_every_s:g} s; longest wait {ours.longest_wait_s:.1f} s, over capacity '
        f'{100 * ours.over_capacity:.0f} % of the time, {ours.skipped_s:.0f} s skipped'
        f'{f", {ours.broken} broken" if ours.broken else ""}; other processes used {ours.others_cores:.2f} cores '
        'meanwhile',
    )


def feed_in_real_time(
    sends: list[tuple[float, int, int]], streams: list[LiveStream], plays: list[Recording], scheduler: LiveScheduler
) -> tuple[list[float], int]:
    """Each chunk at the moment its second of audio is over; the scheduler's lag looked at between sends."""
    lags, over = [], 0
    for at, i, k in sends:
        time.sleep(max(0.0, at - time.monotonic()))
        streams[i].feed(plays[i].chunks[k])
        load = scheduler.load()
        lags.append(load.lag_s)
        over += load.over_capacity
    return lags, over


def settle(scheduler: LiveScheduler, deadline: float) -> None:
    """Until no audio has waited for a second (the last calls are done), or the deadline."""
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.5:
        if scheduler.load().lag_s > 0:
            quiet_since = time.monotonic()
        time.sleep(0.1)


def matches(reference: list[tuple[str, int]], committed: list[tuple[float, str]]) -> list[tuple[int, float]]:
    """(reference word's end ms, commit time) for each live word matched to the reference in order."""
    ours = [word for _at, word in committed]
    aligned = difflib.SequenceMatcher(None, [word for word, _end in reference], ours, autojunk=False)
    return [
        (reference[block.a + j][1], committed[block.b + j][0])
        for block in aligned.get_matching_blocks()
        for j in range(block.size)
    ]


def busy_seconds() -> float:
    """CPU time the whole machine spent on any process (all but idle and I/O wait)."""
    times = psutil.cpu_times()
    return float(sum(getattr(times, name, 0.0) for name in ('user', 'nice', 'system', 'irq', 'softirq', 'steal')))


def cpu_seconds() -> float:
    """This process (the engine's threads, VAD, Whisper) and its ended children (each stream's ffmpeg)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
