"""Bot flows with their versions and channels, the bot's sessions, and skills a conversation needs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete="SET NULL")


def upgrade() -> None:
    op.create_table(
        "bot_flows",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JsonType, nullable=False),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("updated_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        _user_fk("bot_flows", "created_by_id"),
        _user_fk("bot_flows", "updated_by_id"),
        sa.PrimaryKeyConstraint("id", name="pk_bot_flows"),
        sa.UniqueConstraint("name", name="uq_bot_flows_name"),
    )
    op.create_table(
        "bot_flow_versions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("flow_id", BigId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JsonType, nullable=False),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["bot_flows.id"], name="fk_bot_flow_versions_flow_id_bot_flows",
                                ondelete="CASCADE"),
        _user_fk("bot_flow_versions", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name="pk_bot_flow_versions"),
        sa.UniqueConstraint("flow_id", "version", name="uq_bot_flow_versions_flow_id_version"),
    )
    op.create_table(
        "bot_flow_channels",
        sa.Column("channel_id", BigId, nullable=False),
        sa.Column("flow_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name="fk_bot_flow_channels_channel_id_channels",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flow_id"], ["bot_flows.id"], name="fk_bot_flow_channels_flow_id_bot_flows",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", name="pk_bot_flow_channels"),
    )
    op.create_index("ix_bot_flow_channels_flow_id", "bot_flow_channels", ["flow_id"])
    op.create_table(
        "bot_sessions",
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("flow_id", BigId, nullable=True),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("state", JsonType, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("last_input_id", sa.BigInteger(), nullable=False),
        sa.Column("timeout_due", sa.Boolean(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("claimed_until", UtcDateTime(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name="fk_bot_sessions_conversation_id_conversations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flow_id"], ["bot_flows.id"], name="fk_bot_sessions_flow_id_bot_flows",
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_bot_sessions"),
    )
    op.create_index("ix_bot_sessions_flow_id", "bot_sessions", ["flow_id"])
    op.create_index("ix_bot_sessions_due", "bot_sessions", ["due_at"])
    op.create_table(
        "conversation_skills",
        sa.Column("conversation_id", BigId, nullable=False),
        sa.Column("skill_id", BigId, nullable=False),
        sa.Column("min_level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name="fk_conversation_skills_conversation_id_conversations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["skill_id"], ["skills.id"], name="fk_conversation_skills_skill_id_skills",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "skill_id", name="pk_conversation_skills"),
    )


def downgrade() -> None:
    op.drop_table("conversation_skills")
    op.drop_index("ix_bot_sessions_due", table_name="bot_sessions")
    op.drop_index("ix_bot_sessions_flow_id", table_name="bot_sessions")
    op.drop_table("bot_sessions")
    op.drop_index("ix_bot_flow_channels_flow_id", table_name="bot_flow_channels")
    op.drop_table("bot_flow_channels")
    op.drop_table("bot_flow_versions")
    op.drop_table("bot_flows")
