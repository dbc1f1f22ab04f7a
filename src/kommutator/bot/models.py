"""Bot flows (versioned definitions attached to channels) and the bot's session with each conversation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType

OUTCOMES = ("", "contained", "handed_off", "abandoned", "taken_over")


class BotFlow(Base):
    """A flow; ``definition`` is its current version's (every version is kept in ``bot_flow_versions``)."""

    __tablename__ = "bot_flows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)


class BotFlowVersion(Base):
    """One saved version of a flow; a conversation keeps running the version it started with."""

    __tablename__ = "bot_flow_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("bot_flows.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("flow_id", "version"),)


class BotFlowChannel(Base):
    """Which flow greets new conversations on a channel (at most one per channel)."""

    __tablename__ = "bot_flow_channels"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("bot_flows.id", ondelete="CASCADE"), index=True)


class BotSession(Base):
    """The bot's part of one conversation: the flow version, the engine's state and the durable work marker.

    ``due_at`` set means there is work (a customer message or a timeout) for the bot worker; ``last_input_id``
    is the newest customer message already applied, so a crash between steps neither loses nor repeats one.
    """

    __tablename__ = "bot_sessions"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    flow_id: Mapped[int | None] = mapped_column(ForeignKey("bot_flows.id", ondelete="SET NULL"), index=True)
    flow_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active, handoff, resolved, stopped
    outcome: Mapped[str] = mapped_column(String(12), default="")  # see OUTCOMES
    last_input_id: Mapped[int] = mapped_column(BigInteger, default=0)
    timeout_due: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[dt.datetime | None]
    claimed_until: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # the process holding the lease (workers/owners.py)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)
    finished_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_bot_sessions_due", "due_at"),)


class BotIntent(Base):
    """An intent the business defined: example phrases and synonyms per language (``{"ru": [...], "en": [...]}``).
    The bot's intent model is trained on these together with the shipped intents (``bot.nlu.DEFAULT_INTENTS``)."""

    __tablename__ = "bot_intents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    examples: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    synonyms: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)


class BotIntentModel(Base):
    """One trained (or to-be-trained) intent model: the intent set's ``version`` for one language.

    A change to the intents adds ``pending`` rows for the next version; the trainer (``bot/intent_training.py``)
    trains them in the background and stores the model (``IntentModel.to_bytes``) and its cross-validated report;
    the bot uses the newest ``ready`` version, loaded at start."""

    __tablename__ = "bot_intent_models"
    __table_args__ = (UniqueConstraint("version", "language", name="uq_bot_intent_models_version_language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | ready | failed | superseded
    model: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    trained_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
