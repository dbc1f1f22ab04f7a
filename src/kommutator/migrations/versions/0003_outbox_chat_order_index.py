"""Index for claiming outbox items in order per chat.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:35:00
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_chat_order", "outbox", ["status", "ordering_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_chat_order", table_name="outbox")
