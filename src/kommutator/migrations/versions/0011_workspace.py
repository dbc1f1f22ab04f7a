"""Agent workspace: per-user read marks (unread counts) and canned responses.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("last_read_message_id", sa.BigInteger(), nullable=False),
        sa.Column("read_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_conversation_reads_user_id_users"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name="fk_conversation_reads_conversation_id_conversations"),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", name="pk_conversation_reads"),
    )
    op.create_index("ix_conversation_reads_conversation_id", "conversation_reads", ["conversation_id"])
    op.create_table(
        "canned_responses",
        sa.Column("id", BigId, nullable=False),
        sa.Column("team_id", BigId, nullable=True),
        sa.Column("shortcut", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE", name="fk_canned_responses_team_id_teams"),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL",
                                name="fk_canned_responses_created_by_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
    )
    op.create_index("ix_canned_responses_shortcut", "canned_responses", ["shortcut"])


def downgrade() -> None:
    op.drop_index("ix_canned_responses_shortcut", table_name="canned_responses")
    op.drop_table("canned_responses")
    op.drop_index("ix_conversation_reads_conversation_id", table_name="conversation_reads")
    op.drop_table("conversation_reads")
