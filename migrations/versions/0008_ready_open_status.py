"""A recording the server finished while late audio may still come has a status of its own: `READY_OPEN`.

It was `READY` with `chunks_kept` set, a state no status named (see services/recordings/lifecycle.py). The status is
now the only record of it, so `chunks_kept` goes; a downgrade brings both back as they were.

On PostgreSQL the status is an enum type: a label added by ALTER TYPE … ADD VALUE cannot be used in the transaction
that adds it (and all migrations run in one), so the column moves to a new type made here, converting as it goes.
On SQLite the column is a VARCHAR(10) without a check: the rows are updated, and `chunks_kept` is dropped by
SQLite's own ALTER TABLE DROP COLUMN (3.35+), which keeps the search triggers of 0004 (batch mode would not).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the labels, so later model changes never rewrite history.
BEFORE = ('RECORDING', 'FINALIZING', 'READY', 'FAILED')
AFTER = ('RECORDING', 'FINALIZING', 'READY', 'READY_OPEN', 'FAILED')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        _retype(AFTER, "CASE WHEN status = 'READY' AND chunks_kept THEN 'READY_OPEN' ELSE status::text END")
    else:
        op.execute("UPDATE recording SET status = 'READY_OPEN' WHERE status = 'READY' AND chunks_kept")
    op.drop_column('recording', 'chunks_kept')


def downgrade() -> None:
    op.add_column('recording', sa.Column('chunks_kept', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE recording SET status = 'READY', chunks_kept = true WHERE status = 'READY_OPEN'")
    if op.get_bind().dialect.name == 'postgresql':
        _retype(BEFORE, 'status::text')


def _retype(labels: tuple[str, ...], value: str) -> None:
    """PostgreSQL: move `recording.status` to a new `recordingstatus` with these labels, `value` giving each row's."""
    listed = ', '.join(f"'{label}'" for label in labels)
    op.execute(f'CREATE TYPE recordingstatus_new AS ENUM ({listed})')
    op.execute(
        f'ALTER TABLE recording ALTER COLUMN status TYPE recordingstatus_new USING ({value})::recordingstatus_new'
    )
    op.execute('DROP TYPE recordingstatus')
    op.execute('ALTER TYPE recordingstatus_new RENAME TO recordingstatus')
