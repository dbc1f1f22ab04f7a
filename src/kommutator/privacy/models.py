"""Retention policies: how long each kind of data is kept, for every channel or for one."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId


class RetentionPolicy(Base):
    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # conversations, attachments, raw_events, audit
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))  # None: all
    days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    last_run_at: Mapped[dt.datetime | None]
    last_removed: Mapped[int] = mapped_column(Integer, default=0)


class AuditRetention(Base):
    """The audit log's cut-off: entries before ``keep_before`` may be deleted (the log's triggers read it)."""

    __tablename__ = "audit_retention"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)  # always 1
    keep_before: Mapped[dt.datetime | None]
