"""Bot intents as the business's data: intents with examples and synonyms, and trained intent models by version.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=f"fk_{table}_{column}_users", ondelete="SET NULL")


def upgrade() -> None:
    op.create_table(
        "bot_intents",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("examples", JsonType, nullable=False),
        sa.Column("synonyms", JsonType, nullable=False),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("updated_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        _user_fk("bot_intents", "created_by_id"),
        _user_fk("bot_intents", "updated_by_id"),
        sa.PrimaryKeyConstraint("id", name="pk_bot_intents"),
        sa.UniqueConstraint("name", name="uq_bot_intents_name"),
    )
    op.create_table(
        "bot_intent_models",
        sa.Column("id", BigId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=True),
        sa.Column("report", JsonType, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("requested_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("trained_at", UtcDateTime(), nullable=True),
        _user_fk("bot_intent_models", "requested_by_id"),
        sa.PrimaryKeyConstraint("id", name="pk_bot_intent_models"),
        sa.UniqueConstraint("version", "language", name="uq_bot_intent_models_version_language"),
    )


def downgrade() -> None:
    op.drop_table("bot_intent_models")
    op.drop_table("bot_intents")
