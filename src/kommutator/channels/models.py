"""What adapters keep per channel. The channel row itself (``Channel``) is the core's: ingest/models.py."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
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
