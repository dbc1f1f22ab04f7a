"""What adapters keep per channel. The channel row itself (``Channel``) is the core's: ingest/models.py."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId
from kommutator.ingest.models import Channel as Channel


class ChannelState(Base):
    """Small durable values an adapter keeps per channel (a polling offset, an IMAP UID)."""

    __tablename__ = "channel_state"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)

    __table_args__ = (UniqueConstraint("channel_id", "key"),)


class ChannelHealth(Base):
    """How a channel is doing (channels/health.py): ok, degraded or failing, the last error, the last success."""

    __tablename__ = "channel_health"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="ok")
    # Failures since the last success; repeated degrading failures make the channel failing.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str] = mapped_column(String(20), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_error_at: Mapped[dt.datetime | None]
    last_receive_at: Mapped[dt.datetime | None]
    last_send_at: Mapped[dt.datetime | None]
    changed_at: Mapped[dt.datetime] = mapped_column(default=now)
