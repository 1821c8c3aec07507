"""Imported files: a recording made from a file the user chose keeps that file's type and size.

`original_mime_type` is the imported file's type (None: recorded in the browser); `original_bytes` its size, as
declared when the import began and, once finished, as stored. The file itself is kept at `original.<ext>` beside
the audio that is played, unless it is played as it is. A recording's `size_bytes` becomes 64-bit on PostgreSQL:
an imported file may be larger than 2 GiB.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | Sequence[str] | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('recording', sa.Column('original_mime_type', sa.String(length=40), nullable=True))
    op.add_column('recording', sa.Column('original_bytes', sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':  # SQLite's INTEGER holds 64 bits already
        op.alter_column('recording', 'size_bytes', type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('recording', 'size_bytes', type_=sa.Integer(), existing_nullable=True)
    # SQLite's own ALTER TABLE DROP COLUMN (3.35+): batch mode would rebuild the table and lose 0004's triggers
    op.drop_column('recording', 'original_bytes')
    op.drop_column('recording', 'original_mime_type')
