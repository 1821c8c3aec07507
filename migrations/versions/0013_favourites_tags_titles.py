"""Favourites, tags and titles the user gave; the start of a word finds the word where a stemmer shortened it.

`recording.favourite`: the star. `recording.tags`: the labels as typed, in order (a JSON list), and `recording_tag`
the same by case-folded key, for filtering and the owner's list of tags. `recording.named`: the user gave the title,
so an auto title from the transcript never replaces it. Existing recordings count as named unless their title is
still the default "Recording YYYY-MM-DD HH:MM UTC" (a user who typed exactly that loses nothing: it is replaced only
by the words they said). Nothing here rebuilds `recording` on SQLite (batch mode would drop 0009's triggers).

Search: a stemmer keeps "connect" of "connection", so the typed start "connecti" found nothing. Each transcript is
now also indexed word by word beside its stems: on PostgreSQL its vector adds the 'simple' reading of the words (for
languages that stem; existing vectors are made again), on SQLite an English recording's entry is copied, under the
same rowid, into `recording_search_words`, read like `recording_search_unstemmed` (case and accents folded only), so
a search reads its stems and, where they do not match, its words without scanning the same rows twice.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIGIT = '[0-9]'
SQLITE_DEFAULT = f'Recording {_DIGIT * 4}-{_DIGIT * 2}-{_DIGIT * 2} {_DIGIT * 2}:{_DIGIT * 2} UTC'  # a GLOB
POSTGRESQL_DEFAULT = r'^Recording \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$'


# A frozen copy of 0009's vector function with the unstemmed words added (not for 'simple': they are its words).
_VECTOR = """CREATE OR REPLACE FUNCTION transcript_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        config regconfig := transcript_search_config(NEW.language);
    BEGIN
        NEW.search_vector := setweight(
            to_tsvector(config, coalesce((SELECT title FROM recording WHERE id = NEW.recording_id), '')), 'A'
        ) || setweight(to_tsvector(config, coalesce(NEW.text, '')), 'D'){words};
        RETURN NEW;
    END $$"""
_WORDS = """ || CASE WHEN config = 'simple'::regconfig THEN ''::tsvector
            ELSE setweight(to_tsvector('simple', coalesce(NEW.text, '')), 'D') END"""
_REBUILD = "UPDATE transcript SET text = text WHERE transcript_search_config(language) <> 'simple'::regconfig"

# SQLite: 0009's triggers, and a third table, `recording_search_words`, holding an English recording's entry as the
# unstemmed table reads it, under the rowid of its stemmed entry (copied from it, so the two rowids never differ).
STEMMED, UNSTEMMED, WORDS = 'recording_search', 'recording_search_unstemmed', 'recording_search_words'
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


def _place(recording_id: str, language: str, body: str, tables: tuple[str, ...]) -> str:
    """A trigger's body: the recording's entries taken out of every table and put where its language belongs."""
    remove = [f'DELETE FROM {table} WHERE {_row(table, recording_id)};' for table in tables]
    add = [
        f'INSERT INTO {STEMMED} ({COLUMNS}) SELECT id, user_id, title, {body} FROM recording '
        f"WHERE id = {recording_id} AND {language} = 'en';",
        f'INSERT INTO {UNSTEMMED} ({COLUMNS}) SELECT id, user_id, title, {body} FROM recording '
        f"WHERE id = {recording_id} AND {language} IS NOT 'en';",
    ]
    if WORDS in tables:
        add.append(
            f'INSERT INTO {WORDS} (rowid, {COLUMNS}) SELECT rowid, {COLUMNS} FROM {STEMMED} '
            f'WHERE {_row(STEMMED, recording_id)};'
        )
    return ' '.join(remove + add)


def _sqlite_triggers(tables: tuple[str, ...]) -> list[str]:
    text, empty = "coalesce(new.text, '')", "''"
    return [
        'CREATE TRIGGER recording_search_insert AFTER INSERT ON recording BEGIN '
        f"INSERT INTO {UNSTEMMED} ({COLUMNS}) VALUES (new.id, new.user_id, new.title, ''); END",
        'CREATE TRIGGER recording_search_rename AFTER UPDATE OF title ON recording BEGIN '
        + ' '.join(f'UPDATE {table} SET title = new.title WHERE {_row(table, "new.id")};' for table in tables)
        + ' END',
        'CREATE TRIGGER recording_search_delete AFTER DELETE ON recording BEGIN '
        + ' '.join(f'DELETE FROM {table} WHERE {_row(table, "old.id")};' for table in tables)
        + ' END',
        'CREATE TRIGGER transcript_search_insert AFTER INSERT ON transcript BEGIN '
        f'{_place("new.recording_id", "new.language", text, tables)} END',
        'CREATE TRIGGER transcript_search_update AFTER UPDATE OF text, language ON transcript BEGIN '
        f'{_place("new.recording_id", "new.language", text, tables)} END',
        'CREATE TRIGGER transcript_search_delete AFTER DELETE ON transcript BEGIN '
        f'{_place("old.recording_id", "NULL", empty, tables)} END',
    ]


def _search(*, words: bool) -> list[str]:
    """The statements that index the words beside their stems (`words`), or stop doing so."""
    if op.get_bind().dialect.name == 'postgresql':
        return [_VECTOR.format(words=_WORDS if words else ''), _REBUILD]
    drop = [f'DROP TRIGGER IF EXISTS {trigger}' for trigger in TRIGGERS]
    if not words:
        return [*drop, f'DROP TABLE {WORDS}', *_sqlite_triggers((STEMMED, UNSTEMMED))]
    return [
        *drop,
        f"CREATE VIRTUAL TABLE {WORDS} USING fts5({COLUMNS}, tokenize = 'unicode61 remove_diacritics 2')",
        f'INSERT INTO {WORDS} (rowid, {COLUMNS}) SELECT rowid, {COLUMNS} FROM {STEMMED}',
        *_sqlite_triggers((STEMMED, UNSTEMMED, WORDS)),
    ]


def upgrade() -> None:
    op.add_column('recording', sa.Column('favourite', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('recording', sa.Column('tags', sa.JSON(), nullable=True))
    op.add_column('recording', sa.Column('named', sa.Boolean(), nullable=False, server_default=sa.false()))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f"UPDATE recording SET named = true WHERE title !~ '{POSTGRESQL_DEFAULT}'")
    else:
        op.execute(f"UPDATE recording SET named = 1 WHERE title NOT GLOB '{SQLITE_DEFAULT}'")
    op.create_table(
        'recording_tag',
        sa.Column('recording_id', sa.Uuid(), sa.ForeignKey('recording.id'), primary_key=True),
        sa.Column('key', sa.String(length=200), primary_key=True),
        sa.Column('user_id', sa.Uuid(), sa.ForeignKey('user.id'), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
    )
    op.create_index('ix_recording_tag_user_key', 'recording_tag', ['user_id', 'key'])
    for statement in _search(words=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _search(words=False):
        op.execute(statement)
    op.drop_index('ix_recording_tag_user_key', table_name='recording_tag')
    op.drop_table('recording_tag')
    for column in ('named', 'tags', 'favourite'):
        op.drop_column('recording', column)
