"""A user's vocabulary: the names and terms the speech model is told to expect ("Zanzibar", "Priya Venkataraman").

It reaches Whisper as faster-whisper's `hotwords`, which go before every 30-second window it decodes. The initial
prompt would reach the first window only (with `condition_on_previous_text` off, faster-whisper drops it after one
window), and both together made Whisper base read the vocabulary out instead of the speech (README, Vocabulary).

The whole vocabulary must fit Whisper's prompt: faster-whisper keeps at most 223 tokens of hotwords (half the
448-token context, less one) and silently drops the rest. Whisper's tokenizer works on UTF-8 bytes and no token holds
less than one byte, so a prompt of at most 223 bytes always fits; `checked_vocabulary` holds every vocabulary to that.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from services.core.errors import InvalidInput

SEPARATOR = ', '  # measured: names listed so are spelled as listed, and the sentence around them is kept
PROMPT_BUDGET = 223  # tokens of hotwords faster-whisper keeps (max_length // 2 - 1), and so bytes of the prompt
# The defaults fit that budget whatever letters a-z a user picks: a space, 160 characters and 29 separators are 219
# bytes. Letters beyond a-z take 2 to 4 bytes each, and the byte count (checked on every save) refuses what would not
# fit. Measured: more entries also make Whisper more likely to repeat them over silence (decoding.py guards that).
DEFAULT_MAX_ENTRIES = 30
DEFAULT_MAX_ENTRY_CHARS = 40
DEFAULT_MAX_CHARS = 160


@dataclass(frozen=True)
class VocabularyLimits:
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_entry_chars: int = DEFAULT_MAX_ENTRY_CHARS
    max_chars: int = DEFAULT_MAX_CHARS  # all entries together, separators not counted

    def always_fit(self) -> bool:
        """Whether a vocabulary within these limits always fits the prompt when its letters are a-z."""
        return prompt_bytes_at_most(self.max_entries, self.max_chars) <= PROMPT_BUDGET


DEFAULT_LIMITS = VocabularyLimits()


def prompt_bytes_at_most(entries: int, chars: int) -> int:
    """The largest prompt (with faster-whisper's leading space) of `entries` entries of `chars` one-byte characters."""
    return 1 + chars + len(SEPARATOR) * max(entries - 1, 0)


def vocabulary_prompt(entries: Sequence[str]) -> str | None:
    """What the model is given as `hotwords` for a vocabulary (a checked one); None when there is none."""
    return SEPARATOR.join(entries) or None


def cleaned_entries(entries: Sequence[str]) -> list[str]:
    """The entries trimmed (inner runs of spaces made one), empty ones and repeats (in any case) dropped, in order."""
    kept: dict[str, str] = {}
    for entry in entries:
        cleaned = ' '.join(entry.split())
        if cleaned:
            kept.setdefault(cleaned.casefold(), cleaned)
    return list(kept.values())


def checked_vocabulary(entries: Sequence[str], limits: VocabularyLimits) -> list[str]:
    """The vocabulary to keep (cleaned as `cleaned_entries` says); one past `limits`, past the prompt's budget, or with
    a control character in an entry, is refused in plain words."""
    for entry in entries:
        if any(_is_control(ch) for ch in entry):
            raise InvalidInput(
                f'{_shown(entry)} holds a control character (a tab, a line break, …): '
                'give each name or term as plain text, one per entry'
            )
    kept = cleaned_entries(entries)
    if len(kept) > limits.max_entries:
        raise InvalidInput(f'the vocabulary holds at most {limits.max_entries} names or terms, not {len(kept)}')
    for entry in kept:
        if len(entry) > limits.max_entry_chars:
            raise InvalidInput(f'{_shown(entry)} is too long: at most {limits.max_entry_chars} characters an entry')
    if (total := sum(map(len, kept))) > limits.max_chars:
        raise InvalidInput(f'the vocabulary is too long: {total} characters, at most {limits.max_chars} in all')
    if len((' ' + SEPARATOR.join(kept)).encode()) > PROMPT_BUDGET:
        raise InvalidInput(
            "the vocabulary takes more room than the speech model's prompt holds (letters beyond a-z take two to four "
            'times the room): remove or shorten an entry'
        )
    return kept


def _is_control(ch: str) -> bool:
    """Controls, invisible formatting and line separators; a space of any width is a space (made ' ' by cleaning)."""
    return not ch.isprintable() and unicodedata.category(ch) != 'Zs'


def _shown(entry: str) -> str:
    """An entry as a refusal quotes it: short, and with its control characters visible."""
    return repr(entry[:20] + ('…' if len(entry) > 20 else ''))
