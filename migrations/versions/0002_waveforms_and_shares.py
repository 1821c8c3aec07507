"""Waveform peaks on recordings, and share links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('recording') as table:
        table.add_column(sa.Column('peaks', sa.Text(), nullable=True))
    op.create_table(
        'share',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('recording_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', timestamp, nullable=False),
        sa.Column('expires_at', timestamp, nullable=False),
        sa.ForeignKeyConstraint(['recording_id'], ['recording.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_share_recording_id', 'share', ['recording_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_share_recording_id', table_name='share')
    op.drop_table('share')
    with op.batch_alter_table('recording') as table:
        table.drop_column('peaks')
