"""Outbound: preferred-channel scores, marketing consent, message templates, notifications and their attempts.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_channel_scores",
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("channel_type", sa.String(20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("last_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_contact_channel_scores_contact_id_contacts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "channel_type", name="pk_contact_channel_scores"),
    )
    with op.batch_alter_table("contact_consents") as batch:
        batch.add_column(sa.Column("marketing", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "message_templates",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("language", sa.String(12), nullable=False),
        sa.Column("category", sa.String(12), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("parameters", JsonType, nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_templates"),
        sa.UniqueConstraint("name", "language", name="uq_message_templates_name_language"),
    )
    op.create_table(
        "outreach",
        sa.Column("id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("purpose", sa.String(10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("template_id", BigId, nullable=True),
        sa.Column("parameters", JsonType, nullable=False),
        sa.Column("plan", JsonType, nullable=False),
        sa.Column("skipped", JsonType, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_by_user_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_outreach_contact_id_contacts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"], name="fk_outreach_created_by_user_id_users",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["template_id"], ["message_templates.id"],
                                name="fk_outreach_template_id_message_templates", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_outreach"),
    )
    op.create_index("ix_outreach_contact_id", "outreach", ["contact_id"])
    op.create_index("ix_outreach_status", "outreach", ["status", "id"])
    op.create_table(
        "outreach_attempts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("outreach_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("channel_id", BigId, nullable=True),
        sa.Column("channel_type", sa.String(20), nullable=False),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("conversation_id", BigId, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["outreach_id"], ["outreach.id"], name="fk_outreach_attempts_outreach_id_outreach",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name="fk_outreach_attempts_channel_id_channels",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_outreach_attempts_message_id_messages",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name="fk_outreach_attempts_conversation_id_conversations", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_outreach_attempts"),
        sa.UniqueConstraint("outreach_id", "position", name="uq_outreach_attempts_outreach_id_position"),
    )
    op.create_index("ix_outreach_attempts_message_id", "outreach_attempts", ["message_id"])
    op.create_index("ix_outreach_attempts_status", "outreach_attempts", ["status", "id"])


def downgrade() -> None:
    op.drop_table("outreach_attempts")
    op.drop_table("outreach")
    op.drop_table("message_templates")
    with op.batch_alter_table("contact_consents") as batch:
        batch.drop_column("marketing")
    op.drop_table("contact_channel_scores")
