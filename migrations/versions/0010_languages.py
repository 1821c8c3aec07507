"""Languages: a user's default language, and a transcript's language known only once it is heard.

`user.language`: the language the user speaks; their recordings are transcribed in it, skipping detection (NULL:
the model detects it). `transcript.requested_language`: a language asked for one recording ("transcribe again as …"),
before the user's. `transcript.language` becomes nullable: NULL until the model has heard the recording (and when it
heard no speech), read by search as no language, as 0009 reads it.

SQLite cannot drop NOT NULL in place, so `transcript` is rebuilt (batch mode), which drops the triggers on it (0009's
search triggers): they are read from the schema first and made again as they were. `recording` is not touched.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('user', sa.Column('language', sa.String(length=16), nullable=True))
    op.add_column('transcript', sa.Column('requested_language', sa.String(length=16), nullable=True))
    _transcript_language(nullable=True)


def downgrade() -> None:
    op.execute("UPDATE transcript SET language = 'en' WHERE language IS NULL")  # as before: English unless told
    _transcript_language(nullable=False)
    op.drop_column('transcript', 'requested_language')  # SQLite 3.35+ drops a column in place, triggers kept
    op.drop_column('user', 'language')


def _transcript_language(*, nullable: bool) -> None:
    """PostgreSQL alters the column in place; SQLite rebuilds the table and makes its triggers again as they were."""
    column = {'existing_type': sa.String(length=16), 'nullable': nullable}
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        op.alter_column('transcript', 'language', **column)
        return
    query = sa.text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'transcript' ORDER BY name")
    triggers = [sql for (sql,) in bind.execute(query)]
    with op.batch_alter_table('transcript', recreate='always') as table:
        table.alter_column('language', **column)
    for sql in triggers:
        op.execute(sql)
