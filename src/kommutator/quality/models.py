"""Quality tables: SLA policies and clocks, communication standards, ratings, alerts and their deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType

TARGETS = ("first_response", "next_response", "resolution")
ALERT_KINDS = ("sla.warning", "sla.breach", "standard.violation", "csat.negative", "channel.failing",
               "channel.recovered")


class SlaPolicy(Base):
    """Targets a conversation is held to; the first enabled policy (by ``position``) whose conditions match."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Conditions; an empty list or dict matches anything.
    queue_ids: Mapped[list[int]] = mapped_column(JsonType, default=list)
    channel_types: Mapped[list[str]] = mapped_column(JsonType, default=list)
    channel_ids: Mapped[list[int]] = mapped_column(JsonType, default=list)
    contact_attributes: Mapped[dict[str, list[str]]] = mapped_column(JsonType, default=dict)  # segment
    # Targets in seconds (None: not measured).
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    next_response_seconds: Mapped[int | None] = mapped_column(Integer)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    clock: Mapped[str] = mapped_column(String(8), default="wall")  # wall, business
    # Business hours for clock=business (common/hours.py format); None: the conversation's queue's hours.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    warn_percent: Mapped[int] = mapped_column(Integer, default=80)
    # Priority tightens the targets: {"high": 0.5, "urgent": 0.25} multiplies every target.
    priority_factors: Mapped[dict[str, float]] = mapped_column(JsonType, default=dict)
    # Further recipients of this policy's alerts, besides the team's alert rules.
    notify_user_ids: Mapped[list[int]] = mapped_column(JsonType, default=list)
    notify_emails: Mapped[list[str]] = mapped_column(JsonType, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class SlaClock(Base):
    """One target of one conversation: when it started, when it is due, and how it ended."""

    __tablename__ = "sla_clocks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    target: Mapped[str] = mapped_column(String(16))  # first_response, next_response, resolution
    # next_response: the id of the customer message that started it; 0 for the others.
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[dt.datetime]
    target_seconds: Mapped[int] = mapped_column(Integer)
    business: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seconds counted so far (business or wall, pauses excluded), as of ``counted_at``.
    elapsed_seconds: Mapped[int] = mapped_column(Integer, default=0)
    counted_at: Mapped[dt.datetime | None]
    due_at: Mapped[dt.datetime | None]
    warn_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(10), default="running")  # running, paused, hit, missed, cancelled
    warned_at: Mapped[dt.datetime | None]
    breached_at: Mapped[dt.datetime | None]
    hit_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("conversation_id", "target", "seq"),
                      Index("ix_sla_clocks_open", "status", "due_at"))


class QualityState(Base):
    """The monitor's progress on one conversation: its policy, standards checked so far, the rating question."""

    __tablename__ = "quality_conversations"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(BigInteger)
    checked_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # "", asked, rated, comment, commented, done, skipped
    csat_state: Mapped[str] = mapped_column(String(10), default="")
    csat_scale: Mapped[str] = mapped_column(String(4), default="csat")
    csat_asked_at: Mapped[dt.datetime | None]
    csat_message_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)


class CommunicationStandard(Base):
    """What agents' messages are checked against; one row per team (team_id None: everyone else)."""

    __tablename__ = "communication_standards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    greeting_required: Mapped[bool] = mapped_column(Boolean, default=True)
    greetings: Mapped[dict[str, list[str]]] = mapped_column(JsonType, default=dict)  # {"ru": [...], "en": [...]}
    forbidden: Mapped[dict[str, list[str]]] = mapped_column(JsonType, default=dict)
    max_reply_gap_seconds: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class StandardViolation(Base):
    __tablename__ = "standard_violations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    team_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    rule: Mapped[str] = mapped_column(String(20))  # greeting, forbidden_phrase, reply_gap
    detail: Mapped[str] = mapped_column(Text, default="")
    alert_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)


class Rating(Base):
    """The customer's rating of one conversation (never more than one)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    scale: Mapped[str] = mapped_column(String(4))  # csat (1-5), nps (0-10)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)


class CsatSetting(Base):
    """Whether and how customers are asked to rate; per channel (channel_id None: the default)."""

    __tablename__ = "csat_settings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    scale: Mapped[str] = mapped_column(String(4), default="csat")
    ask_after_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    ask_comment: Mapped[bool] = mapped_column(Boolean, default=True)


class AlertRule(Base):
    """Who hears of one kind of alert in one team (team_id None: teams without a rule of their own)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    to_agent: Mapped[bool] = mapped_column(Boolean, default=True)
    to_supervisors: Mapped[bool] = mapped_column(Boolean, default=True)
    user_ids: Mapped[list[int]] = mapped_column(JsonType, default=list)
    emails: Mapped[list[str]] = mapped_column(JsonType, default=list)
    telegram_chat_id: Mapped[str] = mapped_column(String(64), default="")
    telegram_token: Mapped[str] = mapped_column(Text, default="")  # encrypted (crypto.SecretBox)
    # Settings of further destinations by name (quality/destinations/): {"webhook": {"url": …, "secret": enc}}.
    destinations: Mapped[dict[str, dict[str, Any]]] = mapped_column(JsonType, default=dict)
    # The language of this rule's readers outside the workspace (emails to non-users, chats, webhooks):
    # "ru", "en", or "" for both; people who are users get their own interface language.
    language: Mapped[str] = mapped_column(String(2), default="")
    # csat.negative: a score at or below this (1-5) alerts; NPS ratings alert at 0-6.
    threshold: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class QualityAlert(Base):
    __tablename__ = "quality_alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    severity: Mapped[str] = mapped_column(String(8), default="warning")
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(BigInteger)
    agent_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    # {"user_ids": [...], "emails": [...], "telegram": ["chat id", ...]}
    recipients: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    acknowledged_by: Mapped[int | None] = mapped_column(BigInteger)
    acknowledged_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_quality_alerts_team", "team_id", "id"),
                      Index("ix_quality_alerts_conversation", "conversation_id"))


class AlertDelivery(Base):
    """One message of an alert to one target of a destination; claimed by the delivery worker, retried."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("quality_alerts.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(10))  # the destination's name: email, telegram, webhook, …
    target: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2), default="")  # its reader's: ru, en; "": both
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=now)
    claimed_until: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_alert_deliveries_due", "status", "next_attempt_at"),)
