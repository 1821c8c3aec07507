"""The live transcript engine: a recording's chunks, fed as they would be stored, come out as words while it goes on,
through a real ffmpeg and a real Whisper (tiny.en for the mechanics, base where the language matters)."""

import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from services.audio.formats import FORMATS
from services.transcripts.engine import SAMPLE_RATE
from services.transcripts.live import DETECTION_EVERY_S, LivePiece, LiveStream, LiveStreamBroken
from services.transcripts.live_scheduler import LiveScheduler
from services.transcripts.models import load_model, model_folder, model_spec
from tests.support.audio_samples import live_webm, require, split, spoken_webm
from tests.support.model_calls import ModelCalls

WEBM = FORMATS['audio/webm']
ONE_SECOND = 4_000  # bytes of 32 kbit/s Opus: about what MediaRecorder's 1-second timeslice hands over
GARBAGE = b'\x1a\x45\xdf\xa3' + b'this is not a recording' * 200  # WebM's first bytes, as the chunk check wants
LIBRIVOX = Path('/usr/share/pocketsphinx/test/data/librivox')  # human reading, from pocketsphinx-testdata
# "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them /
# he was not an ill disposed young man / unless to be rather cold hearted and rather selfish is to be ill disposed"
CLIPS = ('0870', '0880', '0890')
KEY_STEMS = ['dashwood', 'prudently', 'young', 'selfish']
# Whisper base on an AVX2 machine (AMD EPYC) names espeak's German by a thread: shifted by a few hundred samples, the
# same 8 s of the plumber sentence after "Guten Morgen, meine Damen und Herren." gave German 0.23 to 0.37, Latin or
# Thai ahead. After this opening sentence it gives German 0.71 to 0.92 from 6 s on, at every shift tried (0-3000
# samples); the full pass hears either as German (test_languages.py).
GERMAN = (
    'Das ist eine Aufnahme auf Deutsch. '
    'Der Klempner kommt morgen um neun Uhr und repariert die Heizung im Keller. '
    'Wir fahren am Wochenende mit dem Zug nach Hamburg.'
)


@pytest.fixture(scope='session')
def tiny_en(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Whisper tiny.en: half base's CPU, and the mechanics do not depend on the model."""
    return load_model(model_folder(model_spec('tiny.en'), tmp_path_factory.mktemp('models')))


@pytest.fixture(scope='session')
def spoken(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    """Three sentences read by a person (16 s), as a browser's WebM, and how long they last in ms."""
    wav = tmp_path_factory.mktemp('live') / 'read.wav'
    clips = [str(LIBRIVOX / f'sense_and_sensibility_01_austen_64kb-{clip}.wav') for clip in CLIPS]
    subprocess.run([require('sox'), *clips, str(wav), 'pad', '0.3', '0.5'], check=True, capture_output=True)
    with wave.open(str(wav)) as audio:
        return live_webm(wav, wav.with_suffix('.webm')), audio.getnframes() * 1000 // audio.getframerate()


class Listener:
    """Advances a stream whenever decoded audio arrives, as the worker's scheduler does, and keeps what it commits."""

    def __init__(self, stream: LiveStream) -> None:
        self.stream, self.pieces, self.arrived = stream, list[LivePiece](), threading.Event()
        stream.on_audio = self.arrived.set

    def feed(self, chunk: bytes) -> None:
        self.stream.feed(chunk)
        self.arrived.wait(5)
        self.advance()

    def advance(self) -> None:
        self.arrived.clear()
        self.pieces += self.stream.advance()

    def until(self, done: Callable[[], bool], timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.arrived.wait(0.2)
            self.advance()

    def words(self) -> list[str]:
        """The words as said, without the punctuation Whisper may or may not write after them."""
        return [word.text.lower().strip('.,?!;:') for piece in self.pieces for word in piece.words]

    def said(self, *stems: str) -> list[str]:
        """Which of these word stems were heard, in the order heard ('sunday' for "Sundays", or tiny.en's "Sunday")."""
        return [stem for word in self.words() for stem in stems if word.startswith(stem)]


def ffmpeg_children() -> set[int]:
    return {child.pid for child in psutil.Process().children() if child.name() == 'ffmpeg'}


def test_spoken_words_come_out_in_order_while_the_recording_goes_on(tiny_en: Any, spoken: tuple[bytes, int]) -> None:
    before = ffmpeg_children()
    stream = LiveStream(tiny_en, WEBM)
    listener, chunks = Listener(stream), split(spoken[0], ONE_SECOND)
    for chunk in chunks[:-1]:
        listener.feed(chunk)
    heard_before_the_last_second = listener.said(*KEY_STEMS)
    listener.feed(chunks[-1])
    stream.end_input()
    listener.until(lambda: stream.finished)
    stream.close()
    heard = listener.said(*KEY_STEMS)
    assert heard == [stem for stem in KEY_STEMS if stem in heard] and len(heard) >= 3, listener.words()
    assert {'dashwood', 'prudently'} <= set(heard_before_the_last_second), listener.words()
    times = [(piece.start_ms, piece.end_ms) for piece in listener.pieces]
    assert all(start < end for start, end in times), times
    assert [start for start, _end in times] == sorted({start for start, _end in times}), times  # each once, in order
    assert times[-1][1] <= spoken[1], (times, spoken[1])
    assert ffmpeg_children() == before  # closed: its ffmpeg has ended


def test_each_live_piece_is_encoded_on_a_window_sized_to_it_not_on_30_s(
    tiny_en: Any, spoken: tuple[bytes, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """faster-whisper pads every call to 30 s; a live piece of a few seconds encodes on 10 s (encoder_window.py)."""
    encoded_frames: list[int] = []
    encode = tiny_en.encode

    def measured(features: Any) -> Any:  # the real encode, watched
        encoded_frames.append(tiny_en.encoder_window.trim(features).shape[-1])
        return encode(features)

    monkeypatch.setattr(tiny_en, 'encode', measured)
    stream = LiveStream(tiny_en, WEBM)
    listener = Listener(stream)
    for chunk in split(spoken[0], ONE_SECOND):
        listener.feed(chunk)
    stream.end_input()
    listener.until(lambda: stream.finished)
    stream.close()
    assert len(listener.said(*KEY_STEMS)) >= 3, listener.words()
    pieces_s = [(piece.end_ms - piece.start_ms) / 1000 for piece in listener.pieces]
    assert encoded_frames and all(1000 <= frames < 3000 for frames in encoded_frames), (encoded_frames, pieces_s)
    monkeypatch.undo()
    full: list[int] = []
    monkeypatch.setattr(tiny_en, 'encode', lambda features: full.append(features.shape[-1]) or encode(features))
    found, _info = tiny_en.transcribe(np.zeros(SAMPLE_RATE * 4, np.float32), language='en')
    list(found)
    assert full == [3000], 'outside a live piece, the 30 s Whisper was trained on'


def test_silence_gives_no_words(tiny_en: Any, tmp_path: Path) -> None:
    """A sentence, then 8 s of silence: its words, and nothing after them (Whisper's "Thank you" on silence)."""
    padded = tmp_path / 'said-then-silence.wav'
    said = LIBRIVOX / 'sense_and_sensibility_01_austen_64kb-0880.wav'  # "he was not an ill disposed young man", 3 s
    subprocess.run([require('sox'), str(said), str(padded), 'pad', '0', '8'], check=True, capture_output=True)
    stream = LiveStream(tiny_en, WEBM)
    listener = Listener(stream)
    for chunk in split(live_webm(padded, tmp_path / 'said-then-silence.webm'), ONE_SECOND):
        listener.feed(chunk)
    stream.end_input()
    listener.until(lambda: stream.finished, timeout_s=10)
    stream.close()
    assert listener.said('young', 'man') == ['young', 'man'] and listener.words()[-1] == 'man', listener.words()
    assert listener.pieces[-1].end_ms < 3_500, listener.pieces


def test_garbage_raises_a_clear_error_and_leaves_no_ffmpeg_behind(tiny_en: Any) -> None:
    before = ffmpeg_children()
    stream = LiveStream(tiny_en, WEBM)
    ours = ffmpeg_children() - before
    assert len(ours) == 1
    with pytest.raises(LiveStreamBroken, match='not valid WebM audio'):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stream.feed(GARBAGE)
            stream.advance()
    assert not ffmpeg_children() & ours
    with pytest.raises(LiveStreamBroken):  # and it stays given up
        stream.advance()


def test_the_audio_kept_unheard_stays_under_its_cap(tiny_en: Any, spoken: tuple[bytes, int]) -> None:
    """Nobody advances the stream (the server is busy): it keeps its last 4 s, cut from the front, in recording time."""
    stream = LiveStream(tiny_en, WEBM, max_pending_s=4)
    for chunk in split(spoken[0], ONE_SECOND):
        stream.feed(chunk)
    stream.end_input()
    arrived = threading.Event()
    stream.on_audio = arrived.set
    deadline = time.monotonic() + 10
    while stream.decoded_ms < spoken[1] - 100 and time.monotonic() < deadline:  # until ffmpeg has decoded it all
        arrived.wait(0.2)
        arrived.clear()
    assert stream.pending_ms <= 4_000 and stream.skipped_ms >= spoken[1] - 4_100, (stream.pending_ms, spoken[1])
    listener = Listener(stream)  # from here on, advanced as audio comes
    listener.until(lambda: stream.finished, timeout_s=10)
    stream.close()
    assert listener.said('dashwood', 'selfish') == ['selfish'], listener.words()
    # (the last few ms decoded after the first `advance` may cut a little more)
    assert listener.pieces[0].start_ms >= stream.skipped_ms - 100, (listener.pieces, stream.skipped_ms)


def test_the_language_is_told_from_the_first_seconds_of_speech_the_same_however_they_arrive(tmp_path: Path) -> None:
    """Whisper base, not told the language: the first words wait for two sentences to tell it by (a piece of 2-3 s of
    this German was heard as Norwegian or Thai), then come out in German. A server too busy to listen second by
    second, which finds 10 s waiting, tries on the same first 2, 4, 6 … s of speech, and names the same language."""
    base = load_model(model_folder(model_spec('base'), tmp_path / 'models'))
    german = split(spoken_webm(GERMAN, tmp_path, 'german', voice='de'), ONE_SECOND)
    second_by_second = ModelCalls(base)
    stream = LiveStream(second_by_second, WEBM)
    listener = Listener(stream)
    for chunk in german:
        listener.feed(chunk)
    stream.end_input()
    listener.until(lambda: stream.finished)
    stream.close()
    assert stream.language == 'de', listener.words()
    first_piece = {word.text.lower().strip('.,') for word in listener.pieces[0].words}
    assert {'aufnahme', 'deutsch', 'morgen'} & first_piece, listener.pieces[0]
    assert len({'aufnahme', 'deutsch', 'morgen', 'heizung', 'keller', 'zug', 'hamburg'} & set(listener.words())) >= 4

    all_at_once = ModelCalls(base)
    busy, arrived = LiveStream(all_at_once, WEBM), threading.Event()
    busy.on_audio = arrived.set
    for chunk in german:
        busy.feed(chunk)
    while busy.decoded_ms < 10_000 and arrived.wait(10):  # 10 s of the 11.7 waiting, then heard at once
        arrived.clear()
    busy.advance()
    busy.end_input()
    Listener(busy).until(lambda: busy.finished)
    busy.close()
    assert busy.language == stream.language
    assert len(all_at_once.detected) >= 3, all_at_once.detected  # not one try on all it found
    assert all(length % (DETECTION_EVERY_S * SAMPLE_RATE) == 0 for length in all_at_once.detected), all_at_once.detected


def test_the_scheduler_hears_each_stream_in_order_and_gives_up_a_broken_one(
    tiny_en: Any, spoken: tuple[bytes, int]
) -> None:
    heard: dict[str, list[LivePiece]] = {'a': [], 'b': []}
    broken, done = [], threading.Event()

    def on_pieces(key: Any, pieces: list[LivePiece]) -> None:
        heard[key] += pieces
        if 'selfish' in ' '.join(piece.text for piece in heard['a']).lower():
            done.set()

    scheduler = LiveScheduler(on_pieces=on_pieces, on_broken=lambda key, _error: broken.append(key), max_streams=2)
    good, bad, third = LiveStream(tiny_en, WEBM), LiveStream(tiny_en, WEBM), LiveStream(tiny_en, WEBM)
    assert scheduler.add('a', good) and scheduler.add('b', bad)
    assert not scheduler.add('c', third)  # past its capacity: refused, left to the caller
    third.close()
    scheduler.start()
    try:
        bad.feed(GARBAGE)
        for chunk in split(spoken[0], ONE_SECOND):
            good.feed(chunk)
        assert done.wait(60), heard
    finally:
        scheduler.stop()
    assert broken == ['b'] and heard['b'] == []
    starts = [piece.start_ms for piece in heard['a']]
    assert starts == sorted(starts)
