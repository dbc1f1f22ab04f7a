"""Canned responses, global or for one team."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None: every agent may use it; else only the team's agents (and supervisors).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    shortcut: Mapped[str] = mapped_column(String(32))  # typed as /shortcut in the reply box
    title: Mapped[str] = mapped_column(String(200))
    # Plain text with placeholders {contact.name}, {contact.email}, {contact.phone}, {agent.name}.
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (Index("ix_canned_responses_shortcut", "shortcut"),)
