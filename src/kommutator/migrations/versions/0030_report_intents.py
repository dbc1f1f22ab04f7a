"""Reports: the bot's top intents (report_intents: one row per intent recognised in a customer message, with the
conversation's cuts and how its bot session ended), and covering indexes for the overview's rollup reads on
PostgreSQL (index-only scans).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_intents",
        sa.Column("id", BigId, nullable=False),
        sa.Column("conversation_id", BigId, sa.ForeignKey(
            "conversations.id", ondelete="CASCADE", name="fk_report_intents_conversation_id_conversations"),
            nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("heard_at", UtcDateTime(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_type", sa.String(20), nullable=True),
        sa.Column("team_id", sa.BigInteger(), nullable=True),
        sa.Column("queue_id", sa.BigInteger(), nullable=True),
        sa.Column("agent_id", sa.BigInteger(), nullable=True),
        sa.Column("bot_flow_id", sa.BigInteger(), nullable=True),
        sa.Column("contained", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_intents"),
    )
    op.create_index("ix_report_intents_heard", "report_intents", ["heard_at", "intent"])
    op.create_index("ix_report_intents_conversation", "report_intents", ["conversation_id"])
    # Filled from the bot sessions' history by the reporting worker's catch-up or `kommutator reports rebuild`.
    if op.get_bind().dialect.name == "postgresql":  # INCLUDE is PostgreSQL's; SQLite keeps the plain indexes
        op.drop_index("ux_report_daily", table_name="report_daily")
        op.create_index("ux_report_daily", "report_daily", ["agent_key", "day", "metric", "bucket"], unique=True,
                        postgresql_include=["n", "total"])
        op.drop_index("ix_report_hourly_hour", table_name="report_hourly")
        op.create_index("ix_report_hourly_hour", "report_hourly", ["hour", "metric"],
                        postgresql_include=["bucket", "n", "total", "agent_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_report_hourly_hour", table_name="report_hourly")
        op.create_index("ix_report_hourly_hour", "report_hourly", ["hour", "metric"])
        op.drop_index("ux_report_daily", table_name="report_daily")
        op.create_index("ux_report_daily", "report_daily", ["agent_key", "day", "metric", "bucket"], unique=True)
    op.drop_table("report_intents")
