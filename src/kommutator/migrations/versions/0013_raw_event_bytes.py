"""Raw inbound events kept byte-exact: bodies that are not UTF-8 (mail in windows-1251 or KOI8-R, binary
data) are stored as base64, marked by ``body_encoding``. Rows stored before were UTF-8 text already (their
other bytes were replaced when they were received and cannot be recovered).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import base64

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbound_events", sa.Column("body_encoding", sa.String(8), nullable=False, server_default="text"))


def downgrade() -> None:
    # The old schema held text only: back to the lossy UTF-8 reading it had.
    conn = op.get_bind()
    events = sa.table("inbound_events", sa.column("id", sa.BigInteger()), sa.column("body", sa.Text()),
                      sa.column("body_encoding", sa.String(8)))
    for row in conn.execute(sa.select(events.c.id, events.c.body).where(events.c.body_encoding == "base64")):
        text = base64.b64decode(row.body).decode("utf-8", "replace").replace("\x00", "\ufffd")
        conn.execute(events.update().where(events.c.id == row.id).values(body=text))
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("body_encoding")
