"""Channel team (new conversations go to its agents) and the message an inbound event became.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:29:50
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # On SQLite the batch rebuilds the table; kommutator.migrate turns foreign keys off first, so the rebuild
    # fires no ON DELETE actions on the rows that reference channels.
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.create_foreign_key("fk_channels_team_id_teams", "teams", ["team_id"], ["id"], ondelete="SET NULL")
    op.add_column("inbound_events", sa.Column("message_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_inbound_events_message_id", "inbound_events", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_events_message_id", table_name="inbound_events")
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("message_id")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("team_id")
