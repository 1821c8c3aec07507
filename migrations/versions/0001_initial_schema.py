"""Initial schema: users, recordings and their chunks (the schema the first release made with create_all).

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the types, so later model changes never rewrite history.
recording_status = sa.Enum('RECORDING', 'FINALIZING', 'READY', 'FAILED', name='recordingstatus')
timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'user',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', timestamp, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_user_token_hash', 'user', ['token_hash'], unique=True)
    op.create_table(
        'recording',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('mime_type', sa.String(length=40), nullable=False),
        sa.Column('status', recording_status, nullable=False),
        sa.Column('created_at', timestamp, nullable=False),
        sa.Column('updated_at', timestamp, nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.Column('size_bytes', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    # A user's recordings, newest first (the records page and GET /api/records).
    op.create_index('ix_recording_user_created', 'recording', ['user_id', 'created_at'], unique=False)
    op.create_table(
        'chunk',
        sa.Column('recording_id', sa.Uuid(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['recording_id'], ['recording.id']),
        # A recording's chunks by seq: the primary key's index serves finalize and the gap check.
        sa.PrimaryKeyConstraint('recording_id', 'seq'),
    )


def downgrade() -> None:
    op.drop_table('chunk')
    op.drop_index('ix_recording_user_created', table_name='recording')
    op.drop_table('recording')
    op.drop_index('ix_user_token_hash', table_name='user')
    op.drop_table('user')
    recording_status.drop(op.get_bind(), checkfirst=True)  # PostgreSQL keeps enum types apart from tables
