"""Message templates (WhatsApp needs approved ones outside its 24-hour window), notifications and their attempts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class MessageTemplate(Base):
    """A message with named parameters, e.g. ``Order {{order}} ships on {{date}}``; the provider's approved
    template of the same name and language (WhatsApp) takes the parameters in the listed order."""

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(12))  # as the provider names it: ru, en, en_US
    category: Mapped[str] = mapped_column(String(12), default="utility")  # utility (service), marketing
    body: Mapped[str] = mapped_column(Text)
    parameters: Mapped[list[str]] = mapped_column(JsonType, default=list)
    approved: Mapped[bool] = mapped_column(Boolean, default=True)  # approved by the provider (WhatsApp)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)

    __table_args__ = (UniqueConstraint("name", "language"),)


class OutboundNotification(Base):
    """One notification to one contact: what to say, the channels to try in order, how it went."""

    __tablename__ = "outreach"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10), default="service")  # service, marketing
    text: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id", ondelete="SET NULL"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # The channel ids to try, in order, as decided when it was accepted; ``skipped`` says why others were not.
    plan: Mapped[list[int]] = mapped_column(JsonType, default=list)
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    status: Mapped[str] = mapped_column(String(10), default="sending")  # sending, sent, delivered, read, failed
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)

    __table_args__ = (Index("ix_outreach_status", "status", "id"),)


class NotificationAttempt(Base):
    """One channel tried for a notification: the message sent there and what became of it."""

    __tablename__ = "outreach_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    outreach_id: Mapped[int] = mapped_column(ForeignKey("outreach.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    channel_type: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued, sent, delivered, read, failed
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)

    # The outreach worker looks only at attempts still "queued": the first outcome of their message decides.
    __table_args__ = (UniqueConstraint("outreach_id", "position"), Index("ix_outreach_attempts_status", "status", "id"))


class Segment(Base):
    """A saved audience: rules over contacts (outbound/segments.py), evaluated when a campaign starts."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rules: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class Campaign(Base):
    """One message to the contacts of one or more segments (each contact once), paced, within quiet hours."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_ids: Mapped[list[int]] = mapped_column(JsonType, default=list)
    purpose: Mapped[str] = mapped_column(String(10), default="marketing")  # marketing, service
    texts: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)  # language -> text with {{placeholders}}
    subject: Mapped[str] = mapped_column(String(300), default="")
    template: Mapped[str | None] = mapped_column(String(120))  # a message template's name (WhatsApp)
    parameters: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)
    channel: Mapped[str] = mapped_column(String(20), default="preferred")  # preferred, a channel id or type
    starts_at: Mapped[dt.datetime | None]
    quiet_from: Mapped[int] = mapped_column(Integer, default=21)  # local hour the quiet hours begin
    quiet_to: Mapped[int] = mapped_column(Integer, default=9)  # local hour they end
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # for contacts without their own
    per_minute: Mapped[int] = mapped_column(Integer, default=600)  # the campaign's own throttle
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft, running, paused, cancelled, done
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)

    __table_args__ = (Index("ix_campaigns_status", "status", "id"),)


class CampaignRecipient(Base):
    """One contact of a started campaign: a durable row whose message is written in the same transaction that
    moves it from ``pending`` to ``queued`` — a crash before leaves it pending, after leaves it sent once."""

    __tablename__ = "campaign_recipients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the idempotency key: campaign and contact
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, queued, skipped, cancelled
    reason: Mapped[str] = mapped_column(String(30), default="")  # no_consent, no_reachable_channel, window_closed
    due_at: Mapped[dt.datetime] = mapped_column(default=now)  # later when it fell in the contact's quiet hours
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    queued_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("campaign_id", "contact_id"),
                      Index("ix_campaign_recipients_due", "campaign_id", "status", "due_at"))
