"""Alert destinations as plug-ins: each rule's settings of the destinations beyond its own columns (a signed
webhook …, secrets encrypted), the language a rule's outside readers get, and the language of each delivery.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import JsonType

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("destinations", JsonType, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("language", sa.String(2), nullable=False, server_default=""))
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.add_column(sa.Column("language", sa.String(2), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("language")
        batch.drop_column("destinations")
