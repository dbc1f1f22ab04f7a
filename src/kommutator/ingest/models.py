"""The raw inbound events, stored before the provider is acknowledged."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId


class InboundEvent(Base):
    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(12), default="processed")  # processed, failed
    error: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    # The message this event became; erasing a contact erases their raw events through it.
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("channel_id", "provider_event_id"),)
