"""Transcripts (the words of each recording and the job that makes them) and full-text search over titles and words.

PostgreSQL searches a `tsvector` of title and words on `transcript` (kept by triggers) and an expression index on
recording titles, both GIN. SQLite searches an FTS5 table, `recording_search`, that triggers keep in step with
`recording` and `transcript` in the same transaction. Neither is in the models: `services/transcripts/search.py`
names them (SEARCH_SCHEMA_NAMES) so model/migration comparisons leave them be.

A later migration that rebuilds `recording` or `transcript` on SQLite (batch mode copies the table and drops the
old one, and its triggers with it) must create the triggers below again; tests/test_transcripts.py checks they exist.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types, so later model changes never rewrite history.
transcript_state = sa.Enum('QUEUED', 'TRANSCRIBING', 'DONE', 'FAILED', 'OFF', name='transcriptstate')
timestamp = sa.DateTime(timezone=True)

# FTS5 finds rows by an indexed column (the recording id as one token); its rowid is not tied to the recording.
_ROW = "recording_search MATCH 'recording_key:\"' || {id} || '\"'"
SQLITE_SEARCH = [
    'CREATE VIRTUAL TABLE recording_search USING fts5(recording_key, owner_key, title, body, '
    "tokenize = 'porter unicode61 remove_diacritics 2')",
    "INSERT INTO recording_search (recording_key, owner_key, title, body) SELECT id, user_id, title, '' FROM recording",
    'CREATE TRIGGER recording_search_insert AFTER INSERT ON recording BEGIN '
    "INSERT INTO recording_search (recording_key, owner_key, title, body) VALUES (new.id, new.user_id, new.title, ''); "
    'END',
    'CREATE TRIGGER recording_search_rename AFTER UPDATE OF title ON recording BEGIN '
    f'UPDATE recording_search SET title = new.title WHERE {_ROW.format(id="new.id")}; END',
    'CREATE TRIGGER recording_search_delete AFTER DELETE ON recording BEGIN '
    f'DELETE FROM recording_search WHERE {_ROW.format(id="old.id")}; END',
    'CREATE TRIGGER transcript_search_insert AFTER INSERT ON transcript BEGIN '
    f"UPDATE recording_search SET body = coalesce(new.text, '') WHERE {_ROW.format(id='new.recording_id')}; END",
    'CREATE TRIGGER transcript_search_update AFTER UPDATE OF text ON transcript BEGIN '
    f"UPDATE recording_search SET body = coalesce(new.text, '') WHERE {_ROW.format(id='new.recording_id')}; END",
    'CREATE TRIGGER transcript_search_delete AFTER DELETE ON transcript BEGIN '
    f"UPDATE recording_search SET body = '' WHERE {_ROW.format(id='old.recording_id')}; END",
]
SQLITE_TRIGGERS = [statement.split()[2] for statement in SQLITE_SEARCH if statement.startswith('CREATE TRIGGER')]
# The title and the words in one vector (so a query may match across both), kept by triggers like SQLite's;
# recordings without a transcript yet are found through the index on their titles.
POSTGRESQL_SEARCH = [
    'ALTER TABLE transcript ADD COLUMN search_vector tsvector',
    'CREATE INDEX ix_transcript_search_vector ON transcript USING gin (search_vector)',
    "CREATE INDEX ix_recording_title_search ON recording USING gin (to_tsvector('english', title))",
    """CREATE FUNCTION transcript_search_vector() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector := setweight(
            to_tsvector('english', coalesce((SELECT title FROM recording WHERE id = NEW.recording_id), '')), 'A'
        ) || setweight(to_tsvector('english', coalesce(NEW.text, '')), 'D');
        RETURN NEW;
    END $$""",
    'CREATE TRIGGER transcript_search_vector BEFORE INSERT OR UPDATE OF text ON transcript '
    'FOR EACH ROW EXECUTE FUNCTION transcript_search_vector()',
    """CREATE FUNCTION recording_search_title() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE transcript SET text = text WHERE recording_id = NEW.id;
        RETURN NULL;
    END $$""",
    'CREATE TRIGGER recording_search_title AFTER UPDATE OF title ON recording '
    'FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title) EXECUTE FUNCTION recording_search_title()',
]


def upgrade() -> None:
    op.create_table(
        'transcript',
        sa.Column('recording_id', sa.Uuid(), nullable=False),
        sa.Column('state', transcript_state, nullable=False),
        sa.Column('progress', sa.Float(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('language', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('segments', sa.Text(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('lease_until', timestamp, nullable=True),
        sa.Column('queued_at', timestamp, nullable=False),
        sa.Column('created_at', timestamp, nullable=False),
        sa.Column('updated_at', timestamp, nullable=False),
        sa.ForeignKeyConstraint(['recording_id'], ['recording.id']),
        sa.PrimaryKeyConstraint('recording_id'),
    )
    # The queue: the oldest queued job first, and leases that ran out.
    op.create_index('ix_transcript_state_queued', 'transcript', ['state', 'queued_at'], unique=False)
    for statement in SQLITE_SEARCH if op.get_bind().dialect.name == 'sqlite' else POSTGRESQL_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for trigger in SQLITE_TRIGGERS:
            op.execute(f'DROP TRIGGER {trigger}')
        op.execute('DROP TABLE recording_search')
    else:
        op.execute('DROP TRIGGER recording_search_title ON recording')
        op.execute('DROP FUNCTION recording_search_title()')
        op.drop_index('ix_recording_title_search', table_name='recording')
    op.drop_index('ix_transcript_state_queued', table_name='transcript')
    op.drop_table('transcript')  # with its search column, index and trigger
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION transcript_search_vector()')
    transcript_state.drop(op.get_bind(), checkfirst=True)  # PostgreSQL keeps enum types apart from tables
