"""Queues: where conversations wait for an agent (routing fills in the strategies)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # [{"skill_id": 1, "min_level": 2}, ...]
    required_skills: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    strategy: Mapped[str] = mapped_column(String(40), default="least_busy")
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
