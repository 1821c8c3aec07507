"""A recording's MP3 copy counts in its owner's quota: its size is kept beside the recording's own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('recording') as table:  # a nullable column: added in place, no table rebuild
        table.add_column(sa.Column('mp3_bytes', sa.Integer(), nullable=True))


def downgrade() -> None:
    # Not in batch mode: SQLite would rebuild the table and drop the search triggers of 0004 with it; its own
    # ALTER TABLE DROP COLUMN (3.35+) keeps them.
    op.drop_column('recording', 'mp3_bytes')
