"""Identities carry the email and phone their channel vouched for, and say which of them linked the identity
to its contact.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contact_identities", sa.Column("verified_email", sa.String(254), nullable=True))
    op.add_column("contact_identities", sa.Column("verified_phone", sa.String(16), nullable=True))
    op.add_column("contact_identities", sa.Column("linked_by", sa.String(16), nullable=True))
    op.create_index("ix_contact_identities_verified_email", "contact_identities", ["verified_email"])
    op.create_index("ix_contact_identities_verified_phone", "contact_identities", ["verified_phone"])


def downgrade() -> None:
    op.drop_index("ix_contact_identities_verified_phone", table_name="contact_identities")
    op.drop_index("ix_contact_identities_verified_email", table_name="contact_identities")
    with op.batch_alter_table("contact_identities") as batch:
        batch.drop_column("linked_by")
        batch.drop_column("verified_phone")
        batch.drop_column("verified_email")
