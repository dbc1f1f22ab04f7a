"""Web chat visitors: the browser that holds a token, and the identity it writes under."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId


class WebchatVisitor(Base):
    """One browser on one website. Only the SHA-256 of its token is kept; ``external_id`` is the identity's
    external id on the ``webchat`` channel type, so the visitor's messages join one contact across visits."""

    __tablename__ = "webchat_visitors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=now)


class WebchatInvitationStat(Base):
    """How often one invitation of a web chat channel was shown and accepted (counted by the widget's reports)."""

    __tablename__ = "webchat_invitation_stats"

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    invitation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shown: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now)
