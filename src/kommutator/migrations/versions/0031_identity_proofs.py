"""One story across channels: one-time codes that prove an email or phone (identity_proofs), and the conversation
a merge folded another into (conversations.merged_into_id), and the web chat's invitations shown and accepted
(webchat_invitation_stats).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_proofs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("conversation_id", BigId, nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(254), nullable=False),
        sa.Column("code_hash", sa.String(200), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("channel_id", BigId, nullable=True),
        sa.Column("message_id", BigId, nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("verified_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_identity_proofs_contact_id_contacts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_identity_proofs_conversation_id_conversations"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_identity_proofs_channel_id_channels"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=op.f("fk_identity_proofs_message_id_messages"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_proofs")),
    )
    op.create_index(op.f("ix_identity_proofs_contact_id"), "identity_proofs", ["contact_id"])
    op.create_index("ix_identity_proofs_value", "identity_proofs", ["kind", "value", "created_at"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "webchat_invitation_stats",
        sa.Column("channel_id", BigId, nullable=False),
        sa.Column("invitation_id", sa.String(40), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"],
                                name=op.f("fk_webchat_invitation_stats_channel_id_channels"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", "invitation_id", name=op.f("pk_webchat_invitation_stats")),
    )


def downgrade() -> None:
    op.drop_table("webchat_invitation_stats")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("merged_into_id")
    op.drop_index("ix_identity_proofs_value", table_name="identity_proofs")
    op.drop_index(op.f("ix_identity_proofs_contact_id"), table_name="identity_proofs")
    op.drop_table("identity_proofs")
