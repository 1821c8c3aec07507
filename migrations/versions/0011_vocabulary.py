"""Vocabulary: the names and terms a user's recordings are transcribed listening for.

`user.vocabulary`: a JSON list of strings (services/transcripts/vocabulary.py checks it); NULL for users who never gave
one. Added in place on both databases: SQLite adds a nullable column without rebuilding the table, so no trigger is
touched, and drops it in place again (3.35+), as 0010 does with `user.language`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('user', sa.Column('vocabulary', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('user', 'vocabulary')
