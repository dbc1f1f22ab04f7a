"""Server processes and who holds a bot session: each process registers in ``processes`` and heartbeats
(workers/owners.py); a bot session's lease names its process, as the outbox's already does, so the claims of a
process that died are released as soon as its heartbeat stops instead of when the lease runs out.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import UtcDateTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_processes"),
    )
    with op.batch_alter_table("bot_sessions") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bot_sessions") as batch:
        batch.drop_column("claimed_by")
    op.drop_table("processes")
