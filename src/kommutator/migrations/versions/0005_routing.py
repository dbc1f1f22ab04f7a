"""Routing: queue rules (hours, service level, timeouts, manager wait), channel queue, agent channel weights,
conversation routing state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for col in (
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("business_hours", JsonType, nullable=True),
        sa.Column("sl_target_percent", sa.Integer(), nullable=False, server_default="80"),
        sa.Column("sl_target_seconds", sa.Integer(), nullable=False, server_default="60"),
        sa.Column("accept_timeout_seconds", sa.Integer(), nullable=False, server_default="120"),
        sa.Column("wait_notice_seconds", sa.Integer(), nullable=False, server_default="120"),
        sa.Column("manager_wait_seconds", sa.Integer(), nullable=False, server_default="900"),
        sa.Column("manager_wait_expiry", sa.String(8), nullable=False, server_default="ask"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
    ):
        op.add_column("queues", col)
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("queue_id", BigId, nullable=True))
        batch.create_foreign_key("fk_channels_queue_id_queues", "queues", ["queue_id"], ["id"], ondelete="SET NULL")
    op.add_column("users", sa.Column("channel_weights", JsonType, nullable=False, server_default="{}"))
    op.add_column("users", sa.Column("last_assigned_at", UtcDateTime(), nullable=True))
    op.add_column("conversations", sa.Column("preferred_agent_id", sa.BigInteger(), nullable=True))
    op.add_column("conversations", sa.Column("routing_hold", sa.String(8), nullable=False, server_default=""))
    op.add_column("conversations", sa.Column("hold_until", UtcDateTime(), nullable=True))
    op.add_column("conversations", sa.Column("accepted_at", UtcDateTime(), nullable=True))
    op.add_column("conversations", sa.Column("routing_weight", sa.Float(), nullable=False, server_default="1"))
    op.add_column("conversations", sa.Column("routing_notices", JsonType, nullable=False, server_default="{}"))
    op.create_index("ix_conversations_routing", "conversations", ["status", "queued_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_routing", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        for name in ("routing_notices", "routing_weight", "accepted_at", "hold_until", "routing_hold",
                     "preferred_agent_id"):
            batch.drop_column(name)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_assigned_at")
        batch.drop_column("channel_weights")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("queue_id")
    with op.batch_alter_table("queues") as batch:
        for name in ("enabled", "manager_wait_expiry", "manager_wait_seconds", "wait_notice_seconds",
                     "accept_timeout_seconds", "sl_target_seconds", "sl_target_percent", "business_hours",
                     "description"):
            batch.drop_column(name)
