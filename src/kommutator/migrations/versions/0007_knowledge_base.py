"""Knowledge base: articles, and their full-text index (a generated tsvector column under a GIN index on
PostgreSQL; an FTS5 table of Python-stemmed text on SQLite, with a trigger that drops a deleted article's row).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kommutator.db import BigId, JsonType, UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The article's language picks the configuration; 'russian' stems Latin words with the English stemmer too.
_CONFIG = "CASE language WHEN 'ru' THEN 'russian'::regconfig ELSE 'english'::regconfig END"


def upgrade() -> None:
    op.create_table(
        "knowledge_articles",
        sa.Column("id", BigId, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tags", JsonType, nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("updated_by_id", BigId, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], ondelete="SET NULL",
                                name="fk_knowledge_articles_created_by_id_users"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], ondelete="SET NULL",
                                name="fk_knowledge_articles_updated_by_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_articles"),
    )
    op.create_index("ix_knowledge_articles_listing", "knowledge_articles", ["status", "language", "category"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE knowledge_articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            f"setweight(to_tsvector({_CONFIG}, title), 'A') || "
            f"setweight(jsonb_to_tsvector({_CONFIG}, tags, '[\"string\"]'), 'B') || "
            f"setweight(to_tsvector({_CONFIG}, body), 'C')) STORED"
        )
        op.execute("CREATE INDEX ix_knowledge_articles_search_vector ON knowledge_articles USING gin (search_vector)")
    else:
        # The columns hold stems (kommutator.knowledge.text), written by the actions; rowid is the article id.
        op.execute("CREATE VIRTUAL TABLE knowledge_articles_fts USING fts5("
                   "title, body, tags, tokenize = 'unicode61 remove_diacritics 0')")
        op.execute("CREATE TRIGGER knowledge_articles_fts_delete AFTER DELETE ON knowledge_articles "
                   "BEGIN DELETE FROM knowledge_articles_fts WHERE rowid = old.id; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS knowledge_articles_fts_delete")
        op.execute("DROP TABLE IF EXISTS knowledge_articles_fts")
    op.drop_index("ix_knowledge_articles_listing", table_name="knowledge_articles")
    op.drop_table("knowledge_articles")
