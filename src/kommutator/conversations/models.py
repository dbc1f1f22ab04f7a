"""Conversations, their messages, attachments, labels and status transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.common.waiting import describe
from kommutator.db import Base, BigId, JsonType

STATUSES = ("bot", "queued", "assigned", "waiting", "snoozed", "resolved")
OPEN_STATUSES = ("bot", "queued", "assigned", "waiting", "snoozed")
PRIORITIES = ("low", "normal", "high", "urgent")
DELIVERY = ("received", "queued", "sent", "delivered", "read", "failed")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="bot")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"), index=True)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    subject: Mapped[str] = mapped_column(String(300), default="")
    # The channel of the customer's latest message: where a reply goes by default.
    last_inbound_channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)
    last_message_at: Mapped[dt.datetime] = mapped_column(default=now)
    last_customer_message_at: Mapped[dt.datetime | None]
    queued_at: Mapped[dt.datetime | None]
    assigned_at: Mapped[dt.datetime | None]
    first_response_at: Mapped[dt.datetime | None]
    waiting_since: Mapped[dt.datetime | None]
    snoozed_until: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    reopened_at: Mapped[dt.datetime | None]
    # Routing: the agent who should get it first (the personal manager), what holds it back from others
    # ("" none, "choice": the customer was asked whether to wait for the manager, "manager": waiting for them)
    # and until when, when the assignee opened it, the load it adds to the assignee,
    # and the notices the customer got.
    preferred_agent_id: Mapped[int | None] = mapped_column(BigInteger)
    routing_hold: Mapped[str] = mapped_column(String(8), default="")
    hold_until: Mapped[dt.datetime | None]
    accepted_at: Mapped[dt.datetime | None]
    routing_weight: Mapped[float] = mapped_column(Float, default=1.0)
    # When each routing notice went to the customer: {"out_of_hours": iso, "wait": iso, "manager": iso, ...};
    # "why": why it is still waiting for an agent ({"code", "params", "since"}; common/waiting.py).
    routing_notices: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # Set when merging two contacts folded this conversation into the contact's earlier open one
    # (contacts/fold.py): its messages moved there and it was closed.
    merged_into_id: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def waiting_reason(self) -> dict[str, Any] | None:
        """Why a conversation in the queue has no agent yet (None when it is not waiting for one)."""
        if self.status != "queued" or self.assignee_id is not None:
            return None
        return describe((self.routing_notices or {}).get("why"))

    __table_args__ = (Index("ix_conversations_status_activity", "status", "last_message_at", "id"),
                      Index("ix_conversations_activity", "last_message_at", "id"),
                      Index("ix_conversations_routing", "status", "queued_at"))


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(50), primary_key=True, index=True)


class Transition(Base):
    """Every status or assignment change, with who did it and why."""

    __tablename__ = "conversation_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    assignee_id: Mapped[int | None] = mapped_column(BigInteger)
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    # The same, structured for screens in any language: a code and its values (docs/workspace.md lists them);
    # "" for reasons written before codes existed, which screens show as ``reason``.
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason_params: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=now)

    # The forecast and the reports read transitions of one kind over a period (arrivals in the queue,
    # assignments and resolutions): without this they scanned the whole timeline.
    __table_args__ = (Index("ix_conversation_transitions_status_at", "to_status", "at"),)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # in, out, internal
    sender_type: Mapped[str] = mapped_column(String(8))  # contact, agent, bot, system
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8), default="text")  # text, note, event
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="received")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    status_updated_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("channel_id", "provider_message_id"),
        Index("ix_messages_conversation", "conversation_id", "id"),
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
