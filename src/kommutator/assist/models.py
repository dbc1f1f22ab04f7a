"""What agents did with suggestions: one row per use, and counters per suggestion that the ranking reads."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId

# shown: it was on the agent's screen; inserted: put into the composer; sent_unedited / sent_edited: the reply
# that went out was (not) the inserted text.
ACTIONS = ("shown", "inserted", "sent_unedited", "sent_edited")


class SuggestionEvent(Base):
    """One thing an agent did with one suggestion."""

    __tablename__ = "assist_suggestion_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # "canned:<id>", "article:<id>", "reply:<sha256 of the normalised reply, 16 hex digits>"
    suggestion_key: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(10))  # canned, article, reply
    action: Mapped[str] = mapped_column(String(16))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (Index("ix_assist_suggestion_events_key", "suggestion_key", "action"),
                      Index("ix_assist_suggestion_events_conversation", "conversation_id", "id"))


class SuggestionStats(Base):
    """Counters per suggestion; the ranking's prior is its smoothed acceptance rate."""

    __tablename__ = "assist_suggestion_stats"

    suggestion_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    sent_unedited: Mapped[int] = mapped_column(Integer, default=0)
    sent_edited: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)
