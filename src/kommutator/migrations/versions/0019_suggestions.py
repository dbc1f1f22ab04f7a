"""Agent assist: what agents did with reply suggestions (events) and counters per suggestion (the ranking's prior).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assist_suggestion_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("suggestion_key", sa.String(80), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("conversation_id", BigId, sa.ForeignKey(
            "conversations.id", ondelete="SET NULL",
            name="fk_assist_suggestion_events_conversation_id_conversations"), nullable=True),
        sa.Column("user_id", BigId, sa.ForeignKey(
            "users.id", ondelete="SET NULL", name="fk_assist_suggestion_events_user_id_users"), nullable=True),
        sa.Column("message_id", BigId, sa.ForeignKey(
            "messages.id", ondelete="SET NULL", name="fk_assist_suggestion_events_message_id_messages"),
            nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assist_suggestion_events"),
    )
    op.create_index("ix_assist_suggestion_events_key", "assist_suggestion_events", ["suggestion_key", "action"])
    op.create_index("ix_assist_suggestion_events_conversation", "assist_suggestion_events",
                    ["conversation_id", "id"])
    op.create_table(
        "assist_suggestion_stats",
        sa.Column("suggestion_key", sa.String(80), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("sent_unedited", sa.Integer(), nullable=False),
        sa.Column("sent_edited", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("suggestion_key", name="pk_assist_suggestion_stats"),
    )


def downgrade() -> None:
    op.drop_table("assist_suggestion_stats")
    op.drop_index("ix_assist_suggestion_events_conversation", table_name="assist_suggestion_events")
    op.drop_index("ix_assist_suggestion_events_key", table_name="assist_suggestion_events")
    op.drop_table("assist_suggestion_events")
