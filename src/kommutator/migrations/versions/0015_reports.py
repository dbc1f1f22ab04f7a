"""Reports: one fact row per conversation (its KPI values and cuts), hourly rollups, agents' presence changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_INTS = ("conversations", "messages_in", "messages_out", "reopens", "transfers", "responses")
_NULL_INTS = ("resolutions", "service_level", "service_level_bs", "sla_compliance", "abandonment",
              "bot_containment", "csat", "csat_score", "nps", "nps_score")
_FLOATS = ("wait_s", "wait_bs", "first_response_s", "first_response_bs", "response_s", "response_bs", "handle_s",
           "handle_bs", "resolution_s", "resolution_bs")
_CUTS = ("channel_id", "team_id", "queue_id", "agent_id", "bot_flow_id")


def upgrade() -> None:
    op.create_table(
        "report_facts",
        sa.Column("conversation_id", BigId, sa.ForeignKey("conversations.id", ondelete="CASCADE",
                                                          name="fk_report_facts_conversation_id_conversations"),
                  nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=True) for c in _CUTS],
        sa.Column("channel_type", sa.String(20), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        *[sa.Column(c, UtcDateTime(), nullable=True)
          for c in ("handoff_at", "assigned_at", "first_response_at", "resolved_at", "rated_at")],
        sa.Column("started_hour", UtcDateTime(), nullable=False),
        sa.Column("resolved_hour", UtcDateTime(), nullable=True),
        sa.Column("rated_hour", UtcDateTime(), nullable=True),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in _INTS],
        *[sa.Column(c, sa.Integer(), nullable=True) for c in _NULL_INTS],
        *[sa.Column(c, sa.Float(), nullable=True) for c in _FLOATS],
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_report_facts"),
    )
    for name, cols in (("started", ["started_at"]), ("resolved", ["resolved_at"]), ("rated", ["rated_at"]),
                       ("started_hour", ["started_hour"]), ("resolved_hour", ["resolved_hour"]),
                       ("rated_hour", ["rated_hour"]), ("agent", ["agent_id", "started_at"]),
                       ("computed", ["computed_at"])):
        op.create_index(f"ix_report_facts_{name}", "report_facts", cols)
    op.create_table(
        "report_hourly",
        sa.Column("id", BigId, nullable=False),
        sa.Column("hour", UtcDateTime(), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=True) for c in _CUTS],
        sa.Column("channel_type", sa.String(20), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_hourly"),
    )
    op.create_index("ix_report_hourly_hour", "report_hourly", ["hour", "metric"])
    op.create_table(
        "report_presence",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("presence", sa.String(10), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_report_presence"),
    )
    op.create_index("ix_report_presence_user", "report_presence", ["user_id", "at"])


def downgrade() -> None:
    op.drop_table("report_presence")
    op.drop_table("report_hourly")
    op.drop_table("report_facts")
