"""Search reads each transcript in its own language, no longer in English only.

PostgreSQL: `transcript_search_config(language)` names the text-search configuration of a language code ('simple'
for no language, an unknown one, or one this server lacks); 0004's trigger builds the vector with it and runs again
when the language changes. `transcript_search_query(query)` is the query as every configuration reads it, OR-ed, so
one GIN scan finds the candidates; search.py then keeps the rows that match the query as their own language reads it.
A title without a transcript has no language: its index reads it with 'simple'. Existing entries not in English are
made again (English ones read the same as before).

SQLite: FTS5's one stemmer (porter) is English, and a tokenizer is fixed per table, so a second table,
`recording_search_unstemmed`, reads words with case and accents folded only; the triggers keep each recording in
exactly one of the two, chosen by its transcript's language (English: `recording_search`; none yet: unstemmed).

The language map is a frozen copy of services/transcripts/languages.py (tests/test_search_languages.py compares
them): a later change there replaces `transcript_search_config` or the triggers, and rebuilds the entries whose
reading changed. Nothing here rebuilds `recording` on SQLite (batch mode would drop the triggers).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIGS = {
    'ar': 'arabic', 'ca': 'catalan', 'da': 'danish', 'de': 'german', 'el': 'greek', 'en': 'english',
    'es': 'spanish', 'eu': 'basque', 'fi': 'finnish', 'fr': 'french', 'ga': 'irish', 'hi': 'hindi',
    'hu': 'hungarian', 'hy': 'armenian', 'id': 'indonesian', 'it': 'italian', 'lt': 'lithuanian',
    'nb': 'norwegian', 'ne': 'nepali', 'nl': 'dutch', 'no': 'norwegian', 'pt': 'portuguese', 'ro': 'romanian',
    'ru': 'russian', 'sr': 'serbian', 'sv': 'swedish', 'ta': 'tamil', 'tr': 'turkish', 'yi': 'yiddish',
}  # fmt: skip
# The query as every configuration reads it, OR-ed: for the GIN index, which cannot know each row's language.
ANY_READING_FUNCTION = """CREATE FUNCTION transcript_search_query(query text) RETURNS tsquery
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
    DECLARE
        reading tsquery;
        readings tsquery := '';
    BEGIN
        FOR reading IN
            SELECT DISTINCT websearch_to_tsquery(c.oid::regconfig, query) FROM pg_ts_config c
            WHERE c.cfgnamespace = 'pg_catalog'::regnamespace
        LOOP
            readings := readings || reading;
        END LOOP;
        RETURN readings;
    END $$"""
_VECTOR = """CREATE OR REPLACE FUNCTION transcript_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        config regconfig := {config};
    BEGIN
        NEW.search_vector := setweight(
            to_tsvector(config, coalesce((SELECT title FROM recording WHERE id = NEW.recording_id), '')), 'A'
        ) || setweight(to_tsvector(config, coalesce(NEW.text, '')), 'D');
        RETURN NEW;
    END $$"""
_VECTOR_TRIGGER = (
    'CREATE TRIGGER transcript_search_vector BEFORE INSERT OR UPDATE OF {columns} ON transcript '
    'FOR EACH ROW EXECUTE FUNCTION transcript_search_vector()'
)
_TITLE_INDEX = 'CREATE INDEX ix_recording_title_search ON recording USING gin (to_tsvector({config}, title))'


def _config_function() -> str:
    """Code → configuration as one CASE, which the planner inlines (a catalog lookup per row made search 3× slower).
    Only the configurations this server ships are named: a newer PostgreSQL's extra ones need this made again."""
    shipped = {name for (name,) in op.get_bind().execute(sa.text('SELECT cfgname FROM pg_ts_config'))}
    known = [(code, config) for code, config in CONFIGS.items() if config in shipped]
    when = ' '.join(f"WHEN '{code}' THEN '{config}'::regconfig" for code, config in known)
    return (
        'CREATE FUNCTION transcript_search_config(language text) RETURNS regconfig '
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE language {when} ELSE 'simple'::regconfig END $$"
    )


def _postgresql(*, config: str, columns: str, title: str) -> list[str]:
    """The vector's trigger and the title index with the given readings; the entries not in English are rebuilt."""
    return [
        _VECTOR.format(config=config),
        'DROP TRIGGER transcript_search_vector ON transcript',
        _VECTOR_TRIGGER.format(columns=columns),
        "UPDATE transcript SET text = text WHERE language <> 'en'",  # 'en' reads as 'english' before and after
        'DROP INDEX ix_recording_title_search',
        _TITLE_INDEX.format(config=title),
    ]


# SQLite. FTS5 finds rows by an indexed column (the recording id as one token); its rowid is not tied to the recording.
STEMMED, UNSTEMMED = 'recording_search', 'recording_search_unstemmed'
TABLES = (STEMMED, UNSTEMMED)
COLUMNS = 'recording_key, owner_key, title, body'
TRIGGERS = [
    'recording_search_insert',
    'recording_search_rename',
    'recording_search_delete',
    'transcript_search_insert',
    'transcript_search_update',
    'transcript_search_delete',
]


def _row(table: str, recording_id: str) -> str:
    return f"{table} MATCH 'recording_key:\"' || {recording_id} || '\"'"


def _belongs(table: str, language: str) -> str:
    """SQL: a recording whose transcript is in `language` (NULL: it has none) belongs in `table`."""
    return f"{language} = 'en'" if table == STEMMED else f"{language} IS NOT 'en'"


def _place(recording_id: str, language: str, body: str) -> str:
    """A trigger's body: the recording's entry, taken out of both tables and put into its language's."""
    remove = [f'DELETE FROM {table} WHERE {_row(table, recording_id)};' for table in TABLES]
    add = [
        f'INSERT INTO {table} ({COLUMNS}) SELECT id, user_id, title, {body} FROM recording '
        f'WHERE id = {recording_id} AND {_belongs(table, language)};'
        for table in TABLES
    ]
    return ' '.join(remove + add)


_TEXT, _EMPTY = "coalesce(new.text, '')", "''"
SQLITE_TRIGGERS = [
    'CREATE TRIGGER recording_search_insert AFTER INSERT ON recording BEGIN '
    f"INSERT INTO {UNSTEMMED} ({COLUMNS}) VALUES (new.id, new.user_id, new.title, ''); END",
    'CREATE TRIGGER recording_search_rename AFTER UPDATE OF title ON recording BEGIN '
    + ' '.join(f'UPDATE {table} SET title = new.title WHERE {_row(table, "new.id")};' for table in TABLES)
    + ' END',
    'CREATE TRIGGER recording_search_delete AFTER DELETE ON recording BEGIN '
    + ' '.join(f'DELETE FROM {table} WHERE {_row(table, "old.id")};' for table in TABLES)
    + ' END',
    'CREATE TRIGGER transcript_search_insert AFTER INSERT ON transcript BEGIN '
    f'{_place("new.recording_id", "new.language", _TEXT)} END',
    'CREATE TRIGGER transcript_search_update AFTER UPDATE OF text, language ON transcript BEGIN '
    f'{_place("new.recording_id", "new.language", _TEXT)} END',
    'CREATE TRIGGER transcript_search_delete AFTER DELETE ON transcript BEGIN '
    f'{_place("old.recording_id", "NULL", _EMPTY)} END',
]
# 0004's, for the way down: one table, English for every language.
_OLD_ROW = "recording_search MATCH 'recording_key:\"' || {id} || '\"'"
SQLITE_ENGLISH_TRIGGERS = [
    'CREATE TRIGGER recording_search_insert AFTER INSERT ON recording BEGIN '
    "INSERT INTO recording_search (recording_key, owner_key, title, body) VALUES (new.id, new.user_id, new.title, ''); "
    'END',
    'CREATE TRIGGER recording_search_rename AFTER UPDATE OF title ON recording BEGIN '
    f'UPDATE recording_search SET title = new.title WHERE {_OLD_ROW.format(id="new.id")}; END',
    'CREATE TRIGGER recording_search_delete AFTER DELETE ON recording BEGIN '
    f'DELETE FROM recording_search WHERE {_OLD_ROW.format(id="old.id")}; END',
    'CREATE TRIGGER transcript_search_insert AFTER INSERT ON transcript BEGIN '
    f"UPDATE recording_search SET body = coalesce(new.text, '') WHERE {_OLD_ROW.format(id='new.recording_id')}; END",
    'CREATE TRIGGER transcript_search_update AFTER UPDATE OF text ON transcript BEGIN '
    f"UPDATE recording_search SET body = coalesce(new.text, '') WHERE {_OLD_ROW.format(id='new.recording_id')}; END",
    'CREATE TRIGGER transcript_search_delete AFTER DELETE ON transcript BEGIN '
    f"UPDATE recording_search SET body = '' WHERE {_OLD_ROW.format(id='old.recording_id')}; END",
]


def _refill(table: str, where: str) -> list[str]:
    """The table's entries made again from the recordings and their transcripts."""
    return [
        f'DELETE FROM {table}',
        f'INSERT INTO {table} ({COLUMNS}) '
        "SELECT r.id, r.user_id, r.title, coalesce(t.text, '') FROM recording r "
        f'LEFT JOIN transcript t ON t.recording_id = r.id WHERE {where}',
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        statements = [
            _config_function(),
            ANY_READING_FUNCTION,
            *_postgresql(config='transcript_search_config(NEW.language)', columns='text, language', title="'simple'"),
        ]
    else:
        statements = [
            *(f'DROP TRIGGER IF EXISTS {trigger}' for trigger in TRIGGERS),  # made again whole, whatever was lost
            f"CREATE VIRTUAL TABLE {UNSTEMMED} USING fts5({COLUMNS}, tokenize = 'unicode61 remove_diacritics 2')",
            *(step for table in TABLES for step in _refill(table, _belongs(table, 't.language'))),
            *SQLITE_TRIGGERS,
        ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        statements = [
            *_postgresql(config="'english'", columns='text', title="'english'"),
            'DROP FUNCTION transcript_search_query(text)',
            'DROP FUNCTION transcript_search_config(text)',
        ]
    else:
        statements = [
            *(f'DROP TRIGGER {trigger}' for trigger in TRIGGERS),
            f'DROP TABLE {UNSTEMMED}',
            *_refill(STEMMED, '1 = 1'),
            *SQLITE_ENGLISH_TRIGGERS,
        ]
    for statement in statements:
        op.execute(statement)
