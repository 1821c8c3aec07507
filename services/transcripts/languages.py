"""Languages: the ones Whisper knows (a transcript's, a user's default, "transcribe again as …"), their names, and how
each database's full-text search reads a transcript in one: the one map from ISO 639-1 codes (Whisper's) to
PostgreSQL's text-search configurations and SQLite's FTS5 tokenizers.

The databases apply it in triggers, so migration 0009 holds a frozen copy (PostgreSQL: `transcript_search_config`;
SQLite: the triggers that put each recording in its tokenizer's table); tests/test_search_languages.py fails when
the two disagree, so a change here comes with a migration that also rebuilds the entries it changes.
"""

from services.core.errors import InvalidInput

# Whisper's language codes (ISO 639-1, but 'haw', 'jw' and 'yue'), as faster-whisper's tokenizer lists them
# (tests/test_languages.py compares the two), with their names in English.
WHISPER_LANGUAGES: dict[str, str] = {
    'af': 'Afrikaans', 'am': 'Amharic', 'ar': 'Arabic', 'as': 'Assamese', 'az': 'Azerbaijani', 'ba': 'Bashkir',
    'be': 'Belarusian', 'bg': 'Bulgarian', 'bn': 'Bengali', 'bo': 'Tibetan', 'br': 'Breton', 'bs': 'Bosnian',
    'ca': 'Catalan', 'cs': 'Czech', 'cy': 'Welsh', 'da': 'Danish', 'de': 'German', 'el': 'Greek', 'en': 'English',
    'es': 'Spanish', 'et': 'Estonian', 'eu': 'Basque', 'fa': 'Persian', 'fi': 'Finnish', 'fo': 'Faroese',
    'fr': 'French', 'gl': 'Galician', 'gu': 'Gujarati', 'ha': 'Hausa', 'haw': 'Hawaiian', 'he': 'Hebrew',
    'hi': 'Hindi', 'hr': 'Croatian', 'ht': 'Haitian Creole', 'hu': 'Hungarian', 'hy': 'Armenian', 'id': 'Indonesian',
    'is': 'Icelandic', 'it': 'Italian', 'ja': 'Japanese', 'jw': 'Javanese', 'ka': 'Georgian', 'kk': 'Kazakh',
    'km': 'Khmer', 'kn': 'Kannada', 'ko': 'Korean', 'la': 'Latin', 'lb': 'Luxembourgish', 'ln': 'Lingala', 'lo': 'Lao',
    'lt': 'Lithuanian', 'lv': 'Latvian', 'mg': 'Malagasy', 'mi': 'Maori', 'mk': 'Macedonian', 'ml': 'Malayalam',
    'mn': 'Mongolian', 'mr': 'Marathi', 'ms': 'Malay', 'mt': 'Maltese', 'my': 'Burmese', 'ne': 'Nepali', 'nl': 'Dutch',
    'nn': 'Norwegian Nynorsk', 'no': 'Norwegian', 'oc': 'Occitan', 'pa': 'Punjabi', 'pl': 'Polish', 'ps': 'Pashto',
    'pt': 'Portuguese', 'ro': 'Romanian', 'ru': 'Russian', 'sa': 'Sanskrit', 'sd': 'Sindhi', 'si': 'Sinhala',
    'sk': 'Slovak', 'sl': 'Slovenian', 'sn': 'Shona', 'so': 'Somali', 'sq': 'Albanian', 'sr': 'Serbian',
    'su': 'Sundanese', 'sv': 'Swedish', 'sw': 'Swahili', 'ta': 'Tamil', 'te': 'Telugu', 'tg': 'Tajik', 'th': 'Thai',
    'tk': 'Turkmen', 'tl': 'Tagalog', 'tr': 'Turkish', 'tt': 'Tatar', 'uk': 'Ukrainian', 'ur': 'Urdu', 'uz': 'Uzbek',
    'vi': 'Vietnamese', 'yi': 'Yiddish', 'yo': 'Yoruba', 'yue': 'Cantonese', 'zh': 'Chinese',
}  # fmt: skip
MAX_LANGUAGE_LENGTH = 16  # the columns' width


def checked_language(language: str | None) -> str | None:
    """`language` if Whisper knows it (None: detect it); anything else is refused in plain words."""
    if language is None or language in WHISPER_LANGUAGES:
        return language
    shown = repr(language[:20])
    raise InvalidInput(f'{shown} is not a language the speech model knows: use a code such as en, de or es, or none')


def language_name(language: str | None) -> str:
    """'de' → 'German'; a code Whisper does not list is shown as it is."""
    return WHISPER_LANGUAGES.get(language or '', language or 'unknown')


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
# An English recording's words unstemmed too, under its stemmed entry's rowid (migration 0013): porter keeps "connect"
# of "connection", so the typed start "connecti" is found here.
SQLITE_WORDS = 'recording_search_words'
SQLITE_TOKENIZERS: dict[str, str] = {
    SQLITE_STEMMED: 'porter unicode61 remove_diacritics 2',
    SQLITE_UNSTEMMED: 'unicode61 remove_diacritics 2',
    SQLITE_WORDS: 'unicode61 remove_diacritics 2',
}
PORTER_LANGUAGES = frozenset({'en'})


def postgresql_config(language: str | None) -> str:
    """The text-search configuration a transcript in `language` is indexed and searched with (None: no transcript)."""
    return POSTGRESQL_CONFIGS.get(language or '', NO_STEMMING)


def sqlite_tables(language: str | None) -> list[str]:
    """The FTS5 tables that hold a recording whose transcript is in `language` (None: no transcript)."""
    return [SQLITE_STEMMED, SQLITE_WORDS] if language in PORTER_LANGUAGES else [SQLITE_UNSTEMMED]
