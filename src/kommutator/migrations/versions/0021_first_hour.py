"""A new team's first hour: where a contact's language came from (agent, provider hint, text), the agents'
last reply or typing (the accept timeout leaves busy agents alone), and timeline reasons as a code with values
that screens render in their reader's language.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import JsonType, UtcDateTime

revision = "0021"
down_revision = "0019"
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
    with op.batch_alter_table("conversation_transitions") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(40), nullable=False, server_default=""))
        batch.add_column(sa.Column("reason_params", JsonType, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("conversation_transitions") as batch:
        batch.drop_column("reason_params")
        batch.drop_column("reason_code")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("last_active_at")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("language_source")
