"""How far each user has read each conversation."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base


class ReadMark(Base):
    """The newest message a user has seen in a conversation; customer messages after it are unread."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True, index=True)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    read_at: Mapped[dt.datetime] = mapped_column(default=now)
