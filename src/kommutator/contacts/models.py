"""Contacts (customers), their identities on each channel, and their consents."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    language: Mapped[str | None] = mapped_column(String(8))
    # Where ``language`` came from: "agent" (set explicitly; wins), "provider" (a channel's hint), "text"
    # (detected from what they wrote); see common/language.py.
    language_source: Mapped[str | None] = mapped_column(String(10))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class Identity(Base):
    """One way to reach a contact: a channel type and the provider's id for them.

    ``verified_email`` / ``verified_phone`` hold values the channel vouched for (normalised by
    ``contacts.verified``); a new identity carrying one of them joins the contact that already has it, and
    ``linked_by`` then says which ("email", "phone" or "email+phone"). See docs/contacts.md.
    """

    __tablename__ = "contact_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel_type: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    display: Mapped[str] = mapped_column(String(255), default="")
    verified_email: Mapped[str | None] = mapped_column(String(254), index=True)
    verified_phone: Mapped[str | None] = mapped_column(String(16), index=True)
    linked_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=now)

    __table_args__ = (UniqueConstraint("channel_type", "external_id"),)


class Consent(Base):
    """Whether a contact agreed to be contacted on a channel type, and where that came from."""

    __tablename__ = "contact_consents"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    channel_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)  # service messages (replies, notifications) on this channel
    # Marketing (campaigns, promotional notifications) needs this too; opt-out words withdraw it.
    marketing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=now, onupdate=now)


class ChannelScore(Base):
    """How much a contact writes on a channel type, weighted to recent activity (contacts/preferred.py).

    ``score`` is the sum over the contact's inbound messages of 2 ** ((t - EPOCH) / HALF_LIFE): every score of a
    contact decays at the same rate, so comparing the stored sums compares the decayed ones, and an intake
    adds one number instead of reading and rewriting.
    """

    __tablename__ = "contact_channel_scores"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    channel_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[dt.datetime] = mapped_column(default=now)
