"""One row per recipient: what happened, how urgent, which conversation, and when they read it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType

SEVERITIES = ("info", "warning", "critical")


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))  # e.g. bot.served, sla.breach, csat.negative
    severity: Mapped[str] = mapped_column(String(8), default="info")
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    conversation_id: Mapped[int | None] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    read_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_notifications_user", "user_id", "read_at", "id"),)
