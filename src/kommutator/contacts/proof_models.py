"""One-time codes a customer asks for to prove an email address or phone number is theirs (outbound/proofs.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId


class IdentityProof(Base):
    """A code sent to ``value`` for ``contact_id``. Only the code's salted scrypt hash is kept; ``status`` is
    pending (sent, may be typed back), verified, failed (too many wrong tries), expired or refused (not sent)."""

    __tablename__ = "identity_proofs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))  # email, phone
    value: Mapped[str] = mapped_column(String(254))  # normalised (contacts/verified.py)
    code_hash: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(10))  # bot, widget
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
    expires_at: Mapped[dt.datetime]
    verified_at: Mapped[dt.datetime | None]

    # The rate limit counts a value's codes of the last hour.
    __table_args__ = (Index("ix_identity_proofs_value", "kind", "value", "created_at"),)
