"""The public shape of a transcript (for the API and the pages), and how its words are stored.

Stored: `transcript.text` is every word joined by one space (what search indexes), and `transcript.segments` is
compact JSON, `[[start_ms, end_ms, [[start_ms, end_ms, word], ...]], ...]`: an hour is ~9,000 words.
"""

import json
import uuid
from collections.abc import Iterator

from pydantic import BaseModel

from services.core.models import TranscriptState
from services.transcripts.engine import Segment


class WordPublic(BaseModel):
    start_ms: int
    end_ms: int
    word: str


class SegmentPublic(BaseModel):
    start_ms: int
    end_ms: int
    text: str
    words: list[WordPublic]


class TranscriptPublic(BaseModel):
    recording_id: uuid.UUID
    state: TranscriptState
    progress: float  # the fraction of the audio transcribed, 0..1
    language: str | None  # ISO 639-1, the language `segments` were heard in; None until heard (or no speech was)
    error: str | None  # a plain sentence when state is failed
    segments: list[SegmentPublic]  # the newest finished transcript; kept while a new one is being made


def encode(segments: list[Segment], duration_ms: int) -> tuple[str, str]:
    """(text, segments JSON); times are kept inside the audio and never run backwards."""
    rows: list[list[object]] = []
    words: list[str] = []
    last = 0
    for segment in segments:
        timed: list[tuple[int, int, str]] = []
        for word in segment.words:
            start = min(max(word.start_ms, last), duration_ms)
            end = min(max(word.end_ms, start), duration_ms)
            timed.append((start, end, word.text))
            words.append(word.text)
            last = start
        rows.append([min(segment.start_ms, timed[0][0]), max(min(segment.end_ms, duration_ms), timed[-1][1]), timed])
    return ' '.join(words), json.dumps(rows, separators=(',', ':'), ensure_ascii=False)


def decode(stored: str | None) -> list[SegmentPublic]:
    segments = []
    for start, end, words in json.loads(stored or '[]'):
        public = [WordPublic(start_ms=s, end_ms=e, word=w) for s, e, w in words]
        segments.append(SegmentPublic(start_ms=start, end_ms=end, text=' '.join(w.word for w in public), words=public))
    return segments


def word_starts(stored: str | None) -> Iterator[tuple[int, str]]:
    for _start, _end, words in json.loads(stored or '[]'):
        for start, _end_word, word in words:
            yield start, word


def time_at(stored: str | None, offset: int) -> int | None:
    """The start of the word at character `offset` (0-based) of the stored text, which joins the words by spaces."""
    position = 0
    for start, word in word_starts(stored):
        if offset < position + len(word) + 1:
            return int(start)
        position += len(word) + 1
    return None
