"""A transcript's language as each database's full-text search reads it: the one map from ISO 639-1 codes (Whisper's)
to PostgreSQL's text-search configurations and SQLite's FTS5 tokenizers.

The databases apply it in triggers, so migration 0009 holds a frozen copy (PostgreSQL: `transcript_search_config`;
SQLite: the triggers that put each recording in its tokenizer's table); tests/test_search_languages.py fails when
the two disagree, so a change here comes with a migration that also rebuilds the entries it changes.
"""

# The snowball stemmers PostgreSQL ships (older versions lack a few; a server without one reads that language as
# 'simple'). Anything else, and a recording that has no transcript yet, is read word by word: 'simple'.
POSTGRESQL_CONFIGS: dict[str, str] = {
    'ar': 'arabic',
    'ca': 'catalan',
    'da': 'danish',
    'de': 'german',
    'el': 'greek',
    'en': 'english',
    'es': 'spanish',
    'eu': 'basque',
    'fi': 'finnish',
    'fr': 'french',
    'ga': 'irish',
    'hi': 'hindi',
    'hu': 'hungarian',
    'hy': 'armenian',
    'id': 'indonesian',
    'it': 'italian',
    'lt': 'lithuanian',
    'nb': 'norwegian',
    'ne': 'nepali',
    'nl': 'dutch',
    'no': 'norwegian',
    'pt': 'portuguese',
    'ro': 'romanian',
    'ru': 'russian',
    'sr': 'serbian',
    'sv': 'swedish',
    'ta': 'tamil',
    'tr': 'turkish',
    'yi': 'yiddish',
}
NO_STEMMING = 'simple'

# FTS5 has one stemmer, porter, and it is English: stemming German with English rules would join words that differ
# and miss the ones that belong together. A tokenizer is fixed per FTS5 table, so there are two tables and each
# recording sits in the one of its transcript's language; the other table folds case and accents only ("hauser"
# finds "Häuser"). A search reads both.
SQLITE_STEMMED = 'recording_search'
SQLITE_UNSTEMMED = 'recording_search_unstemmed'
SQLITE_TOKENIZERS: dict[str, str] = {
    SQLITE_STEMMED: 'porter unicode61 remove_diacritics 2',
    SQLITE_UNSTEMMED: 'unicode61 remove_diacritics 2',
}
PORTER_LANGUAGES = frozenset({'en'})


def postgresql_config(language: str | None) -> str:
    """The text-search configuration a transcript in `language` is indexed and searched with (None: no transcript)."""
    return POSTGRESQL_CONFIGS.get(language or '', NO_STEMMING)


def sqlite_table(language: str | None) -> str:
    """The FTS5 table that holds a recording whose transcript is in `language` (None: no transcript)."""
    return SQLITE_STEMMED if language in PORTER_LANGUAGES else SQLITE_UNSTEMMED
