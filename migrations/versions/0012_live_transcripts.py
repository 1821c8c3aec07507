"""Live transcripts: the words heard while a recording is still being made, shown on its owner's recorder page.

`live_transcript`: one row per recording whose page asked for live words: its state (waiting for a worker, heard
by one under a lease, paused because the server was busy, ended), how many pieces it holds and up to when the audio
was heard. `live_piece`: the words, one row per piece, read by the page after the last one it has. Both go when the
full transcript is stored or the recording is deleted. `user.live_transcript`: the user's switch (on by default).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | Sequence[str] | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

live_state = sa.Enum('WAITING', 'LIVE', 'BUSY', 'ENDED', name='livestate')


def upgrade() -> None:
    op.add_column('user', sa.Column('live_transcript', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        'live_transcript',
        sa.Column('recording_id', sa.Uuid(), sa.ForeignKey('recording.id'), primary_key=True),
        sa.Column('state', live_state, nullable=False),
        sa.Column('worker', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('pieces', sa.Integer(), nullable=False),
        sa.Column('heard_ms', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_live_transcript_state_created', 'live_transcript', ['state', 'created_at'])
    op.create_table(
        'live_piece',
        sa.Column('recording_id', sa.Uuid(), sa.ForeignKey('recording.id'), primary_key=True),
        sa.Column('seq', sa.Integer(), primary_key=True),
        sa.Column('start_ms', sa.Integer(), nullable=False),
        sa.Column('end_ms', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('live_piece')
    op.drop_index('ix_live_transcript_state_created', table_name='live_transcript')
    op.drop_table('live_transcript')
    live_state.drop(op.get_bind(), checkfirst=True)  # PostgreSQL keeps an enum type apart from its table
    op.drop_column('user', 'live_transcript')
