"""Credential versions (sign out everywhere) and kept chunks for late audio of auto-finished recordings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user') as table:
        table.add_column(sa.Column('credential_version', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('recording') as table:
        table.add_column(sa.Column('chunks_kept', sa.Boolean(), nullable=False, server_default=sa.false()))
        table.add_column(sa.Column('assembled_chunks', sa.Integer(), nullable=True))
    # Chunks already stored keep their old key; new ones are stored under a key with their content hash.
    with op.batch_alter_table('chunk') as table:
        table.add_column(sa.Column('legacy_key', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('chunk') as table:
        table.alter_column('legacy_key', server_default=sa.false(), existing_type=sa.Boolean(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('chunk') as table:
        table.drop_column('legacy_key')
    with op.batch_alter_table('recording') as table:
        table.drop_column('assembled_chunks')
        table.drop_column('chunks_kept')
    with op.batch_alter_table('user') as table:
        table.drop_column('credential_version')
