"""Subscriptions, the deliveries owed to them and each delivery's attempts (the delivery log)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Subscription(Base):
    __tablename__ = "event_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JsonType, default=list)  # public types (catalogue.TYPES)
    secret_encrypted: Mapped[str] = mapped_column(Text)  # "whsec_…", encrypted with the runtime's SecretBox
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why it stopped: "" (enabled or turned off by a person), or "failing" when the server gave up on it.
    disabled_reason: Mapped[str] = mapped_column(String(20), default="")
    failing_since: Mapped[dt.datetime | None]  # the first failure after the last success
    last_success_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)


class Delivery(Base):
    """One event owed to one subscription. ``order_key`` ("conversation:7", "contact:3") keeps one subject's
    events in order: a delivery is sent only when no older one with the same key is still owed."""

    __tablename__ = "event_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("event_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))  # the webhook-id header: the same on every retry and replay
    event_type: Mapped[str] = mapped_column(String(40))
    order_key: Mapped[str] = mapped_column(String(60), default="")
    # What the event says at the moment it happened (ids, the change); the rest is read when it is sent.
    event: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=now)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=now)
    claimed_until: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[dt.datetime | None]

    __table_args__ = (
        Index("ix_event_deliveries_due", "status", "next_attempt_at"),
        Index("ix_event_deliveries_order", "subscription_id", "order_key", "status", "id"),
        Index("ix_event_deliveries_log", "subscription_id", "id"),
    )


class DeliveryAttempt(Base):
    """One try at sending a delivery: what the receiver answered (the delivery log shows these)."""

    __tablename__ = "event_delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("event_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=now)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
