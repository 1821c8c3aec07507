"""The live transcript of one recording while it is made: its chunks decoded as they come by one ffmpeg process, its
speech found by Silero VAD, each stretch heard once by Whisper and its words committed.

Whisper pads every call to a 30-second window, so a call costs about the same for one word as for ten (base: ~1.2
CPU-s on these cores): speech is heard when a pause ends it, or once it has gone on `max_piece_s` past the words
already committed (a busy scheduler stretches that, so calls thin out as streams are added). Of speech that goes on,
the last word (and any ending in the last 250 ms) may be cut by the audio's end: it is heard again with what follows,
after a second of context whose words, found by the last committed word's text, are not committed twice.
"""

import logging
import os
import select
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np

from services.audio.ffmpeg import STDERR_KEPT, ffmpeg_executable
from services.audio.formats import AudioFormat
from services.core.errors import AppError
from services.transcripts.decoding import LIVE_PASS, Decoding, spoken_form
from services.transcripts.engine import ENGLISH, SAMPLE_RATE, Segment, SegmentGuard, Word

Decide = Literal['no', 'if clear', 'yes']  # whether a try at the language takes the leader
log = logging.getLogger(__name__)
MAX_PENDING_S = 30  # audio not yet heard, at most; past it the oldest is cut (the full pass after Stop hears it)
CLOSE_TIMEOUT_S = 5.0
FEED_TIMEOUT_S = 5.0  # a chunk is a few KB and the pipe holds 64 KB: ffmpeg that takes none for this long is stuck
# Not told the language, the first words wait until Whisper names it surely from the speech so far (tried every
# DETECTION_EVERY_S), or DETECTION_S after speech began (two sentences): pieces of 2-7 s of German espeak speech
# were named Norwegian, Thai and Latin, with probabilities of 0.13 to 0.48. Never sure by then, it takes the language
# with the most probability over all its tries, each weighed by its length: on an AVX2 machine the same German was
# named nn 0.13, la 0.29, de 0.60 and la 0.26 as it grew, and any one try alone could be wrong.
SURE_LANGUAGE, DETECTION_EVERY_S, DETECTION_S = 0.8, 2, 8
# Short tries can be sure and wrong (2.5 s of espeak Spanish: Thai 0.82), so none under this is taken as sure.
SURE_AFTER_S = 4
# Past DETECTION_S the language most probable over the tries is taken once it weighs CLEAR_LEAD times the next one;
# without so clear a lead the tries go on, to MAX_DETECTION_S (or the end of the recording), when the leader is taken.
CLEAR_LEAD, MAX_DETECTION_S = 2.0, 16
TOKENS_PER_S = 15  # a piece's text is at most this long (a loop is cut short, not decoded to 448 tokens)
MIN_TOKENS, MAX_TOKENS = 40, 200  # MAX_TOKENS plus the longest hotwords prompt stay within Whisper's 448
SETTLE_MS = 1_000  # speech going on that Whisper heard nothing in is heard again from this long before its end
MAX_HOLD_MS = 2_000  # however Whisper timed its words: each call on speech going on commits all but its last 2 s
CUT_RISK_MS = 250  # a word ending this near the end of speech going on may be cut short: it is heard again
SEAM_MS = 600  # a word heard again for context is the committed one if it has its text and starts this near it


class LiveStreamBroken(AppError):
    """ffmpeg could not decode what the recording sent: the worker logs it and gives up this stream's live text."""

    status_code = 422


@dataclass(frozen=True)
class CutPolicy:
    """When a stretch of speech is heard. One stream, Whisper base (bench/live.py, a quiet machine): cut at pauses
    only, words came 4.2 s after they were said at the median (p95 7.9 s) for 0.24 CPU-s per audio-s; heard every 2 s
    of speech that goes on, 2.4 s (3.6 s) for 0.57. Every 1.5 s lost 7 % of the words to short pieces; every 3 or 4 s
    (in earlier versions) missed a 3-s median."""

    pause_ms: int = 250  # a pause this long ends a piece
    max_piece_s: float = 2.0  # speech going on this long is heard up to now, all but its last word committed
    context_ms: int = 1_000  # the held-back word is heard again with this much before it (not committed twice)
    min_speech_ms: int = 250  # a shorter sound is not speech (a click, a breath)
    pad_ms: int = 200  # kept around speech, less than `pause_ms`: the VAD hears a word end a little early

    def vad_options(self) -> Any:
        from faster_whisper.vad import VadOptions

        return VadOptions(
            min_silence_duration_ms=self.pause_ms, min_speech_duration_ms=self.min_speech_ms, speech_pad_ms=self.pad_ms
        )


@dataclass(frozen=True)
class LivePiece:
    start_ms: int  # in the recording's time
    end_ms: int
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Step:
    """What `advance` does with the audio not yet heard (in its samples)."""

    hear: tuple[int, int] | None  # the stretch to hear now
    keep_from: int  # where the audio still to be heard starts afterwards
    going_on: bool = False  # speech goes on past the stretch: its last word may be cut, and is heard again


def plan(audio: np.ndarray, ended: bool, policy: CutPolicy, max_piece_s: float, committed: int = 0) -> Step:
    """Speech ended by a pause is heard at once; speech going on waits until it has gone on `max_piece_s` past
    `committed` (the words before it, kept for context, are committed)."""
    from faster_whisper.vad import get_speech_timestamps

    speech = get_speech_timestamps(audio, policy.vad_options()) if audio.size else []
    closed = speech if ended else [chunk for chunk in speech if chunk['end'] < audio.size]
    if closed:
        return Step((closed[0]['start'], closed[-1]['end']), audio.size if ended else closed[-1]['end'])
    if speech and audio.size - max(speech[0]['start'], committed) >= max_piece_s * SAMPLE_RATE:
        return Step((speech[0]['start'], audio.size), speech[0]['start'], going_on=True)
    if speech:
        return Step(None, speech[0]['start'])  # keep it from its start
    return Step(None, audio.size if ended else max(0, audio.size - SAMPLE_RATE // 2))  # what may start a word


def held_back(segments: list[Segment], end_ms: int) -> tuple[int, int]:
    """Of speech heard up to `end_ms` while it goes on: how many of its last words wait to be heard again (the last,
    which the audio's end may have cut, and any ending within CUT_RISK_MS of it), and where they start (ms; at most
    MAX_HOLD_MS back, however Whisper timed them)."""
    words = [word for segment in segments for word in segment.words]
    held = min(1, len(words))
    while held < len(words) and words[-held - 1].end_ms > end_ms - CUT_RISK_MS:
        held += 1
    return held, max(words[-held].start_ms if held else end_ms - SETTLE_MS, end_ms - MAX_HOLD_MS)


def new_words(segments: list[Segment], last: Word | None, committed_ms: int, held: int) -> list[Segment]:
    """The segments cut to the words not committed yet, less the last `held`. Heard again from before
    `committed_ms` (for context), the committed ones end at the `last` committed word, found by its text near its time
    (Whisper times a word heard twice a little differently), else at `committed_ms` by each word's middle."""
    words = [word for segment in segments for word in segment.words]
    end = len(words) - held
    seam = [i + 1 for i in range(end) if last is not None and same_word(words[i], last)]
    first = seam[-1] if seam else next((i for i in range(end) if mid_ms(words[i]) >= committed_ms), end)
    cut, index = [], 0
    for segment in segments:
        ours = segment.words[max(0, first - index) : max(0, end - index)]
        index += len(segment.words)
        if ours:
            cut.append(Segment(max(segment.start_ms, ours[0].start_ms), min(segment.end_ms, ours[-1].end_ms), ours))
    return cut


def same_word(word: Word, other: Word) -> bool:
    return spoken_form(word.text) == spoken_form(other.text) and abs(word.start_ms - other.start_ms) <= SEAM_MS


def mid_ms(word: Word) -> int:
    return (word.start_ms + word.end_ms) // 2


class _Pcm:
    """Decoded audio not yet heard, shared by the reader thread and the stream; past `cap` samples the oldest goes."""

    def __init__(self, cap: int) -> None:
        self.lock = threading.Lock()
        self.data = bytearray()  # float32 samples from `start` (in the recording's samples) on
        self.start = self.skipped = 0
        self.unseen_since: float | None = None  # when the oldest audio no `advance` has looked at came
        self.ended = False
        self.cap = cap
        self.on_audio: Callable[[], None] = lambda: None

    def add(self, block: bytes) -> None:
        with self.lock:
            self.data += block
            if (over := len(self.data) // 4 - self.cap) > 0:
                del self.data[: over * 4]
                self.start, self.skipped = self.start + over, self.skipped + over
            self.unseen_since = self.unseen_since or time.monotonic()
        self.on_audio()

    def end(self) -> None:
        with self.lock:
            self.ended, self.unseen_since = True, self.unseen_since or time.monotonic()
        self.on_audio()

    def take(self) -> tuple[np.ndarray, int, bool]:
        with self.lock:
            self.unseen_since = None
            return np.frombuffer(bytes(self.data), '<f4'), self.start, self.ended

    def drop_before(self, sample: int) -> None:
        with self.lock:
            count = min(max(0, sample - self.start), len(self.data) // 4)
            del self.data[: count * 4]
            self.start += count


def _read(stdout: IO[bytes], pcm: _Pcm) -> None:
    rest = b''
    with stdout:
        while block := stdout.read1(1 << 16):  # type: ignore[attr-defined]
            whole = (len(rest) + len(block)) // 4 * 4
            rest, block = (rest + block)[whole:], (rest + block)[:whole]
            pcm.add(block)
    pcm.end()


def decoder_command(fmt: AudioFormat) -> list[str]:
    """ffmpeg reading the recording's container, forced, from stdin only (as `ffmpeg_reading` reads a file); 16 kHz
    mono float32 out, each packet flushed as it is decoded (measured with WebM, Ogg and fragmented MP4: a chunk's
    audio comes out as soon as it is written)."""
    only_stdin = ('-protocol_whitelist', 'pipe', '-format_whitelist', fmt.demuxer, *fmt.demuxer_options)
    output = ('-map', '0:a:0', '-ac', '1', '-ar', str(SAMPLE_RATE), '-f', 'f32le', '-flush_packets', '1', 'pipe:1')
    command = ('-hide_banner', '-nostdin', '-v', 'error', *only_stdin, '-f', fmt.demuxer, '-i', 'pipe:0', *output)
    return [ffmpeg_executable(), *command]


class LiveStream:
    """One recording's live transcript: `feed` its container bytes in order, call `advance` (one thread at a time) for
    the newly committed pieces, `close` at the end. Times are in the recording's time."""

    def __init__(
        self,
        model: Any,
        fmt: AudioFormat,
        *,
        language: str | None = None,
        prompt: str | None = None,
        policy: CutPolicy = CutPolicy(),
        decoding: Decoding = LIVE_PASS,
        max_pending_s: int = MAX_PENDING_S,
    ) -> None:
        """`model`: the shared faster-whisper model; `language`: ISO 639-1, or None to tell it from the first
        DETECTION_S after speech began (then kept); `prompt`: names and terms to listen for, given to Whisper as its
        hotwords (vocabulary.py's `vocabulary_prompt`), whose echo over near-silence the quality guards drop."""
        self.model, self.fmt, self.prompt, self.policy, self.decoding = model, fmt, prompt, policy, decoding
        self.language = language if model.model.is_multilingual else ENGLISH
        self._committed_ms = 0  # the words before this are committed: heard again for context, they are left out
        self._last: Word | None = None  # the last word committed
        self._detection_tried = 0  # samples of speech the language was last tried on (a grid of them)
        self._language_votes: dict[str, float] = {}  # each language's probabilities over the tries, added up
        self._pcm = _Pcm(max_pending_s * SAMPLE_RATE)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed with ffmpeg) a file: ffmpeg never blocks on it
        pipe = subprocess.PIPE
        self._process = subprocess.Popen(decoder_command(fmt), stdin=pipe, stdout=pipe, stderr=self._errors)
        assert self._process.stdin is not None and self._process.stdout is not None
        os.set_blocking(self._process.stdin.fileno(), False)  # `feed` waits at most FEED_TIMEOUT_S
        self._reader = threading.Thread(target=_read, args=(self._process.stdout, self._pcm), daemon=True)
        self._reader.start()
        self._stop = weakref.finalize(self, _stop, self._process, self._errors)  # ffmpeg ends even if never closed

    @property
    def on_audio(self) -> Callable[[], None]:
        """Called on the reader thread whenever decoded audio arrives: a scheduler's wake-up."""
        return self._pcm.on_audio

    @on_audio.setter
    def on_audio(self, callback: Callable[[], None]) -> None:
        self._pcm.on_audio = callback

    @property
    def waiting_since(self) -> float | None:
        """`time.monotonic()` when the oldest audio `advance` has not looked at yet arrived; None: none waits."""
        return self._pcm.unseen_since

    @property
    def skipped_ms(self) -> int:
        """Audio cut unheard because `advance` was not called often enough (the server was busy)."""
        return self._pcm.skipped * 1000 // SAMPLE_RATE

    @property
    def decoded_ms(self) -> int:
        """How much of the recording ffmpeg has decoded so far."""
        with self._pcm.lock:
            return (self._pcm.start + len(self._pcm.data) // 4) * 1000 // SAMPLE_RATE

    @property
    def pending_ms(self) -> int:
        """Decoded audio kept, not yet heard: at most `max_pending_s`."""
        return len(self._pcm.data) // 4 * 1000 // SAMPLE_RATE

    @property
    def finished(self) -> bool:
        """The input ended (`end_input`, or ffmpeg stopped) and every word in it is committed."""
        with self._pcm.lock:
            return self._pcm.ended and not self._pcm.data and self._pcm.unseen_since is None

    def feed(self, data: bytes) -> None:
        """The next chunk of the container, as stored (the first one holds the header)."""
        stdin = self._process.stdin
        assert stdin is not None
        view, deadline = memoryview(data), time.monotonic() + FEED_TIMEOUT_S
        try:
            while view:
                if not select.select([], [stdin], [], max(0.0, deadline - time.monotonic()))[1]:
                    raise self._broken(f'ffmpeg took no input for {FEED_TIMEOUT_S:g} s')
                view = view[os.write(stdin.fileno(), view) :]
        except (OSError, ValueError):  # a closed pipe: ffmpeg has ended
            raise self._broken('ffmpeg stopped reading its input') from None

    def end_input(self) -> None:
        """The recording stopped: what is left is heard whole at the next `advance`, whether or not speech ended."""
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()

    def advance(self, *, max_piece_s: float | None = None) -> list[LivePiece]:
        """Hear the stretch that is ready, if any: the newly committed pieces, in order. Blocks for one Whisper call
        at most; raises LiveStreamBroken once ffmpeg has failed on the input. `max_piece_s` overrides the policy's
        (a busy scheduler hears speech that goes on less often)."""
        audio, start, ended = self._pcm.take()
        if ended:  # its output is over: ffmpeg has ended, or is ending
            _stop(self._process, None)
        if self._process.poll() not in (None, 0):
            raise self._broken(f'ffmpeg exited with {self._process.returncode}')
        committed = max(0, self._committed_ms * SAMPLE_RATE // 1000 - start)
        step = plan(audio, ended, self.policy, max_piece_s or self.policy.max_piece_s, committed)
        if self.language is None and step.hear is not None and not ended:
            step = self._until_the_language_is_known(audio, step.hear[0])
        keep_from, heard = start + step.keep_from, []
        if step.hear is not None:
            heard = self._hear(audio[step.hear[0] : step.hear[1]], start + step.hear[0])
            end_ms = (start + step.hear[1]) * 1000 // SAMPLE_RATE
            again = (start + step.hear[0]) * 1000 // SAMPLE_RATE < self._committed_ms  # context heard again
            held, sure_until = held_back(heard, end_ms) if step.going_on else (0, end_ms)
            heard = new_words(heard, self._last if again else None, self._committed_ms, held)
            self._committed_ms = max(self._committed_ms, sure_until)
            self._last = heard[-1].words[-1] if heard else self._last
            if step.going_on:  # the held-back word is heard again, with what comes before it for context
                keep_from = max(start + step.hear[0], (sure_until - self.policy.context_ms) * SAMPLE_RATE // 1000)
        self._pcm.drop_before(keep_from)
        return [LivePiece(s.start_ms, s.end_ms, ' '.join(w.text for w in s.words), s.words) for s in heard]

    def close(self) -> None:
        """End ffmpeg (killed if it has not ended CLOSE_TIMEOUT_S after its input) and let the audio go."""
        self._stop()
        self._reader.join(CLOSE_TIMEOUT_S)
        with self._pcm.lock:
            self._pcm.data = bytearray()

    def _until_the_language_is_known(self, audio: np.ndarray, first: int) -> Step:
        """All the speech since it began, once Whisper names its language surely, or the tries so far clearly (from
        DETECTION_S on), or it has gone on MAX_DETECTION_S; until then, nothing is heard."""
        if not self._try_languages(audio[first:]):
            return Step(None, first)
        return Step((first, audio.size), first, going_on=True)

    def _try_languages(self, speech: np.ndarray, *, ended: bool = False) -> bool:
        """The tries due in `speech` (from its start): one on each first DETECTION_EVERY_S, 2·DETECTION_EVERY_S, …
        seconds, however the audio arrived. A busy server that takes 12 s at once tries the same spans as one that took
        it second by second, so the language depends on the speech, not on the server's load (the tries on a test's
        German said Thai, German, German, Latin 0.24, then German; tried wherever the audio had got to, a busy run
        once took Latin). `ended`: no more speech comes, so what is past the last try is tried too and the leader
        taken. Whether the language is known."""
        step, most = DETECTION_EVERY_S * SAMPLE_RATE, MAX_DETECTION_S * SAMPLE_RATE
        while self.language is None and self._detection_tried + step <= min(speech.size, most):
            self._detection_tried += step
            span = self._detection_tried
            decide: Decide = 'yes' if span >= most else 'if clear' if span >= DETECTION_S * SAMPLE_RATE else 'no'
            self._detect(speech[:span], decide=decide)
        if self.language is None and ended:
            if speech.size > self._detection_tried and self._detection_tried < most:
                self._detect(speech[:most], decide='yes')
            else:
                self.language = self._leader()
        return self.language is not None

    def _detect(self, audio: np.ndarray, *, decide: Decide) -> bool:
        """One more try at the language: kept if Whisper is sure of it; otherwise, as `decide` says, the one most
        probable over every try so far, each weighed by its seconds. Whether the language is known now."""
        # with the VAD, as `transcribe` detects it (without, German was read as Latin)
        language, probability, probabilities = self.model.detect_language(audio=audio, vad_filter=True)
        seconds = audio.size / SAMPLE_RATE  # a longer try tells more: its say weighs more
        for name, share in probabilities:
            self._language_votes[name] = self._language_votes.get(name, 0.0) + share * seconds
        ranked = [*sorted(self._language_votes.values(), reverse=True), 0.0]
        if probability >= SURE_LANGUAGE and seconds >= SURE_AFTER_S:
            self.language = str(language)
        elif decide == 'yes' or (decide == 'if clear' and ranked[0] >= CLEAR_LEAD * ranked[1]):
            self.language = self._leader()
        return self.language is not None

    def _leader(self) -> str:
        """The language most probable over the tries so far, each weighed by its seconds."""
        return max(self._language_votes, key=lambda name: self._language_votes[name])

    def _hear(self, audio: np.ndarray, offset: int) -> list[Segment]:
        offset_ms = offset * 1000 // SAMPLE_RATE
        if self.language is None:
            self._try_languages(audio, ended=True)
            log.info('live: heard %s', self.language)
        tokens = min(MAX_TOKENS, max(MIN_TOKENS, TOKENS_PER_S * audio.size // SAMPLE_RATE))
        options = {**self.decoding.options(), 'max_new_tokens': tokens, 'hotwords': self.prompt}
        guard = SegmentGuard(offset_ms, self.decoding, self.prompt)
        # a window sized to the piece, not Whisper's 30 s: a third of the CPU (encoder_window.py); the segments are
        # decoded as they are read, so inside it
        with self.model.encoder_window.sized_to(audio.size / SAMPLE_RATE):
            found, _info = self.model.transcribe(audio, language=self.language, **options)
            return [kept for segment in found if (kept := guard.keep(segment)) is not None]

    def _broken(self, what: str) -> LiveStreamBroken:
        """ffmpeg ended (killed if need be); its own words go to the log (they may name server paths)."""
        if self._stop.alive:  # the first time only
            self._process.kill()
            self._process.wait()
            self._errors.seek(max(0, self._errors.seek(0, 2) - STDERR_KEPT))
            log.warning('live transcript given up: %s: %s', what, self._errors.read().decode(errors='replace').strip())
            self.close()
        return LiveStreamBroken(f'the live audio could not be decoded: it is not valid {self.fmt.label} audio')


def _stop(process: 'subprocess.Popen[bytes]', errors: IO[bytes] | None) -> None:
    """ffmpeg's input closed, and ffmpeg ended (killed if it has not ended within CLOSE_TIMEOUT_S)."""
    try:
        if process.stdin is not None:
            process.stdin.close()  # ffmpeg decodes what it has and ends
        process.wait(CLOSE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()
    if errors is not None:
        errors.close()
