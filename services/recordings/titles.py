"""Titles: the default one a recording starts with, and one made from its first words once its transcript is stored,
so a list of recordings is not a column of "Recording 2026-12-06 10:07 UTC"."""

from datetime import datetime

MAX_TITLE_LENGTH = 200  # the column's size
AUTO_TITLE_CHARS = 60
_EDGE_PUNCTUATION = " .,;:!?-–—…'‘’"
_PAIRED = str.maketrans('', '', '"“”«»()[]{}')  # quotes and brackets: cut at a word, one of a pair would be left


def default_title(when: datetime) -> str:
    return f'Recording {when:%Y-%m-%d %H:%M} UTC'


def auto_title(text: str, limit: int = AUTO_TITLE_CHARS) -> str | None:
    """The transcript's first words, cut at a word boundary within `limit` characters, without punctuation hanging at
    either end; None when it has no words."""
    words = ' '.join(''.join(ch for ch in text if ch.isprintable()).translate(_PAIRED).split()).split(' ')
    title = ''
    for word in words:
        longer = f'{title} {word}' if title else word
        if len(longer) > limit:
            break
        title = longer
    if not title and words[0]:  # one word longer than the limit: cut inside it rather than give nothing
        title = words[0][:limit]
    title = title.strip(_EDGE_PUNCTUATION)
    if not title:
        return None
    return title if title[1:2].isupper() else title[:1].upper() + title[1:]  # "iPhone" stays as it is
