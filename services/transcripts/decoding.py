"""How Whisper is asked to listen, in one place, and the quality guards on what it answers.

Whisper was trained on subtitles: over silence it writes what subtitles say when nobody speaks ("Thank you.", "You",
"Thanks for watching!"), and on a sound that repeats it can loop ("N-N-N-N", "1st, 1st, 1st"). Three layers keep
that out of a transcript: Silero VAD hands Whisper only the stretches that hold speech; faster-whisper's own checks
(no-speech probability, and a compression ratio that decodes a looping window again at a higher temperature); and
`heard_as_speech`, which drops what still gets through. Measured on base and tiny.en (README, Transcripts): silence
with the VAD off gave "You", a looping sound gave "N-N-N-N…"; with the guards, nothing, at the same WER and CPU.
A user's vocabulary (vocabulary.py) adds one habit: over a window with little speech Whisper may read it out.
"""

import re
import zlib
from dataclasses import asdict, dataclass
from typing import Any

# What Whisper writes over silence, as `spoken_form` reads it; dropped where the model itself doubted there was speech.
SILENCE_PHRASES = frozenset(
    {
        'you',
        'thank you',
        'thank you very much',
        'thank you so much',
        'thanks for watching',
        'thank you for watching',
        'thank you for watching and see you next time',
        'bye',
        'bye bye',
        'music',
        'subtitles by the amara org community',
        'untertitel im auftrag des zdf 2017',
        'untertitel der amara org community',
        'sous titres réalisés para la communauté d amara org',
        'sous titrage st 501',
        'merci',
        'gracias',
        'danke',
    }
)


@dataclass(frozen=True)
class Decoding:
    """faster-whisper's `transcribe` options that decide what is heard (its names, so they pass straight through)."""

    beam_size: int = 5
    # Decoding again at a higher temperature when a pass loops or is unsure; a live pass would give it up for speed.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    vad_filter: bool = True  # Silero VAD: silence never reaches Whisper
    condition_on_previous_text: bool = False  # a prompt of the previous text makes a loop go on (tiny.en: ". . . .")
    no_speech_threshold: float = 0.6  # a window Whisper thinks silent, and whose words it doubts, is skipped
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4  # text that zips this well repeats itself: decode again
    # faster-whisper's skipping of silence around a likely hallucination: off, as measured it removed nothing the
    # other guards left, and once spent 9× the CPU on a looping sound (43 s instead of 5 s for 15 s of audio).
    hallucination_silence_threshold: float | None = None

    def options(self) -> dict[str, Any]:
        return {**asdict(self), 'temperature': list(self.temperature), 'word_timestamps': True}


FULL_PASS = Decoding()
# While recording: one greedy pass per piece, no fallback (it doubled the cost, MEASURED.md); a loop or a doubted
# silence phrase is then dropped by `heard_as_speech`, and the full pass after Stop hears it again.
LIVE_PASS = Decoding(beam_size=1, temperature=(0.0,))
# Measured with Whisper base: given a vocabulary, it wrote "Zanzibar, Oskarsdottir" over the last second of a recording
# that had said them before (no-speech probability 0.41 to 0.91); names said on their own were at 0.10 to 0.18.
HOTWORD_ECHO_NO_SPEECH = 0.3
MIN_LOOP_CHARS = 24  # shorter text always zips badly
MIN_LOOP_WORDS = 4  # "no, no" is taken as said; "N, N, N, N" is not
MIN_LOOP_RUN = 5  # one word this many times in a row ends what was said: "no, no, no, no" may be said, five times not
MAX_LOOP_PHRASE = 16  # words: a sentence said over and over is a loop too
MIN_PHRASE_REPEATS = 3  # "go team, go team" may be said; three times in a row is taken as a loop


def heard_as_speech(
    text: str, *, no_speech_prob: float, decoding: Decoding = FULL_PASS, hotwords: str | None = None
) -> bool:
    """False for a segment Whisper invented: one of its silence phrases where it doubted there was speech at all,
    punctuation without a word (". ." over hiss), a loop that every temperature still produced (faster-whisper then
    keeps the least bad pass), or the `hotwords` it was given, read out where it doubted there was speech."""
    words = spoken_form(text)
    if not words or (no_speech_prob > decoding.no_speech_threshold and words in SILENCE_PHRASES):
        return False
    if hotwords and no_speech_prob > HOTWORD_ECHO_NO_SPEECH and reads_out(hotwords, words):
        return False
    return not is_loop(text, decoding.compression_ratio_threshold)


def reads_out(hotwords: str, words: str) -> bool:
    """Whether `words` (in spoken form) are only words of the hotwords: "Zanzibar, Oskarsdottir" is."""
    return set(words.split()) <= set(spoken_form(hotwords).split())


def is_loop(text: str, threshold: float) -> bool:
    """The test faster-whisper makes of a whole window, made of one segment (its text compresses too well), or most
    of its words are one word over and over."""
    data = text.strip().encode()
    if len(data) >= MIN_LOOP_CHARS and len(data) / len(zlib.compress(data)) > threshold:
        return True
    words = spoken_form(text).split()
    return len(words) >= MIN_LOOP_WORDS and max(words.count(word) for word in set(words)) * 4 >= len(words) * 3


def words_before_a_loop(words: list[str]) -> int:
    """How many of a segment's words come before a loop at its end. A loop starts where one word follows itself
    MIN_LOOP_RUN times ("…young man, N -N -N -N -N …"; a word may hold several: "an-an-an"), all of it dropped; or
    where a phrase of up to MAX_LOOP_PHRASE words is said MIN_PHRASE_REPEATS times in a row ("…young man. He was
    not an ill-disposed young man. He was not…", what the temperature fallback wrote over a buzz once), of which
    the first saying is kept."""
    tokens = [(token, index) for index, word in enumerate(words) for token in spoken_form(word).split()]
    said = [token for token, _index in tokens]
    for start in range(len(said)):
        if said[start : start + MIN_LOOP_RUN] == [said[start]] * MIN_LOOP_RUN:
            return tokens[start][1]
        for length in range(2, MAX_LOOP_PHRASE + 1):
            if start + length * MIN_PHRASE_REPEATS > len(said):
                break
            phrase = said[start : start + length]
            if all(said[start + n * length : start + (n + 1) * length] == phrase for n in range(1, MIN_PHRASE_REPEATS)):
                return tokens[start + length][1]
    return len(words)


def says_again(before: list[str], said: list[str]) -> bool:
    """Whether a segment's words (`said`, in spoken form) only say the segment before it (`before`) again, in whole
    or in part, once or over and over: Whisper's loop across segments. Both of at least MIN_LOOP_WORDS words, so
    "Yes. Yes." stays."""
    if len(before) < MIN_LOOP_WORDS or len(said) < MIN_LOOP_WORDS:
        return False
    return all(word == before[index % len(before)] for index, word in enumerate(said))


def spoken_form(text: str) -> str:
    """'Thank you!' → 'thank you': lower case, words only."""
    return ' '.join(re.findall(r'\w+', text.lower()))
