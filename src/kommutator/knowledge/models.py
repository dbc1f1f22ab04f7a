"""Knowledge-base articles: what agents answer from, the bot quotes and the public help page shows.

The search index is not a model: a generated tsvector column on PostgreSQL, an FTS5 table on SQLite (both
made by migration 0007; see knowledge/search.py).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Article(Base):
    __tablename__ = "knowledge_articles"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    # Plain text: paragraphs split by blank lines, "- " / "1. " list items, "## " headings; never HTML.
    body: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    language: Mapped[str] = mapped_column(String(2))  # "ru" or "en": picks the stemmer
    category: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")  # "draft" or "published"
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)
    published_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_knowledge_articles_listing", "status", "language", "category"),)
