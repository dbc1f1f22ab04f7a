"""Web chat visitors (the website chat widget): a hashed token per browser and the identity it writes under.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webchat_visitors",
        sa.Column("id", BigId, nullable=False),
        sa.Column("channel_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE",
                                name="fk_webchat_visitors_channel_id_channels"),
        sa.PrimaryKeyConstraint("id", name="pk_webchat_visitors"),
        sa.UniqueConstraint("token_hash", name="uq_webchat_visitors_token_hash"),
        sa.UniqueConstraint("external_id", name="uq_webchat_visitors_external_id"),
    )
    op.create_index("ix_webchat_visitors_channel_id", "webchat_visitors", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_webchat_visitors_channel_id", table_name="webchat_visitors")
    op.drop_table("webchat_visitors")
