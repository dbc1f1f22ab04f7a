"""A new team's first hour: where a contact's language came from (agent, provider hint, text), and the
agents' last answer for the accept timeout.

Revision ID: 0021
Revises: 0014
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import UtcDateTime

revision = "0021"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("language_source", sa.String(10), nullable=True))
    # A language already on a contact was given by someone (the contacts API or a channel's hint): keep it
    # from being overridden by a short message.
    op.execute("UPDATE contacts SET language_source = 'provider' WHERE language IS NOT NULL")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("last_active_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_active_at")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("language_source")
