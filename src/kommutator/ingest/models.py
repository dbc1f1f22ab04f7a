"""Connected sources (one row per Telegram bot, mailbox, widget, API integration) and the raw inbound events,
stored before the provider is acknowledged."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # Fernet token over a JSON object; see kommutator.crypto.SecretBox.
    credentials_encrypted: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # New conversations on this channel belong to this team: its agents see them.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # New conversations on this channel wait in this queue (its skills, strategy, hours).
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class InboundEvent(Base):
    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    # processed, failed, or unmatched: a status report for a message whose provider id we have not stored
    # yet (the provider answered faster than the outbox recorded the send); applied when it is stored.
    status: Mapped[str] = mapped_column(String(12), default="processed")
    # For unmatched reports: the provider message id they are about.
    ref: Mapped[str | None] = mapped_column(String(255))
    # For unmatched reports: the normalised report ({"status", "reason"}) to apply later.
    pending: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    error: Mapped[str] = mapped_column(Text, default="")
    # The raw event as received: as text when it is UTF-8 (webhook JSON, most mail), else base64 of the
    # bytes (mail in windows-1251 or KOI8-R, binary): ``ingest.actions.raw_body`` gives the bytes back.
    body: Mapped[str] = mapped_column(Text)
    body_encoding: Mapped[str] = mapped_column(String(8), default="text", server_default="text")
    # The message this event became; erasing a contact erases their raw events through it.
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("channel_id", "provider_event_id"),
                      Index("ix_inbound_events_unmatched", "channel_id", "ref"))
