"""Reports: histogram buckets in the hourly rollups (medians and percentiles of any period and group from
summed buckets), daily histograms of all cuts together and per agent (the overview, the agents report), and an index on transitions by kind and
time (the forecast's arrivals and handle times).

The rollups and facts are emptied: the reporting worker recomputes every conversation's facts and rollups on its
first pass after the upgrade (its catch-up sweep finds no facts and takes them all), as
``kommutator reports rebuild`` would.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM report_hourly")
    op.execute("DELETE FROM report_facts")
    with op.batch_alter_table("report_hourly") as batch:
        batch.add_column(sa.Column("bucket", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "report_daily",
        sa.Column("id", BigId, nullable=False),
        sa.Column("day", UtcDateTime(), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("agent_key", sa.BigInteger(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_daily"),
    )
    op.create_index("ux_report_daily", "report_daily", ["agent_key", "day", "metric", "bucket"], unique=True)
    op.create_index("ix_conversation_transitions_status_at", "conversation_transitions", ["to_status", "at"])


def downgrade() -> None:
    op.drop_index("ix_conversation_transitions_status_at", table_name="conversation_transitions")
    op.drop_table("report_daily")
    op.execute("DELETE FROM report_hourly")
    op.execute("DELETE FROM report_facts")
    with op.batch_alter_table("report_hourly") as batch:
        batch.drop_column("bucket")
