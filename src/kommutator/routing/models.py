"""What routing needs beyond the queue: skills one conversation requires (e.g. named by a bot hand-off)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.db import Base


class ConversationSkill(Base):
    """A skill the conversation needs on top of its queue's required skills."""

    __tablename__ = "conversation_skills"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    skill_id: Mapped[int] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True)
    min_level: Mapped[int] = mapped_column(Integer, default=1)
