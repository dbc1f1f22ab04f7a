"""Per-channel durable state (polling offsets) and status reports waiting for their message's provider id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_state",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("channel_id", BigId, sa.ForeignKey("channels.id", ondelete="CASCADE",
                                                     name="fk_channel_state_channel_id_channels"), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_channel_state"),
        sa.UniqueConstraint("channel_id", "key", name="uq_channel_state_channel_id_key"),
    )
    op.add_column("inbound_events", sa.Column("ref", sa.String(255), nullable=True))
    op.add_column("inbound_events", sa.Column("pending", JsonType, nullable=True))
    op.create_index("ix_inbound_events_unmatched", "inbound_events", ["channel_id", "ref"])


def downgrade() -> None:
    op.drop_index("ix_inbound_events_unmatched", table_name="inbound_events")
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("ref")
        batch.drop_column("pending")
    op.drop_table("channel_state")
