"""Channel health: status (ok, degraded, failing), the last error with its time, the last receive and send.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_health",
        sa.Column("channel_id", BigId, sa.ForeignKey("channels.id", ondelete="CASCADE",
                                                     name="fk_channel_health_channel_id_channels"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(20), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", UtcDateTime(), nullable=True),
        sa.Column("last_receive_at", UtcDateTime(), nullable=True),
        sa.Column("last_send_at", UtcDateTime(), nullable=True),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name="pk_channel_health"),
    )


def downgrade() -> None:
    op.drop_table("channel_health")
