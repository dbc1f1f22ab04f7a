"""Queues: where conversations wait for an agent, with the rules the router serves them by."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kommutator.clock import now
from kommutator.db import Base, BigId, JsonType


class Queue(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Only agents of this team serve the queue (None: any agent with the skills).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    # Higher first: the router serves queues in priority order, then conversations by priority and wait.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # [{"skill_id": 1, "min_level": 2}, ...]
    required_skills: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    strategy: Mapped[str] = mapped_column(String(40), default="least_busy")
    # {"timezone": "Europe/Moscow", "days": {"mon": [["09:00", "18:00"]], ...}, "holidays": ["2026-12-31"]};
    # None: always open.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    # Service level: sl_target_percent of conversations answered within sl_target_seconds.
    sl_target_percent: Mapped[int] = mapped_column(Integer, default=80)
    sl_target_seconds: Mapped[int] = mapped_column(Integer, default=60)
    # An assigned agent must open the conversation within this many seconds, else it is re-routed (0: off,
    # the default; see docs/routing.md for the warning and the busy-agent rule).
    accept_timeout_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # Tell the customer their place and the estimated wait after this long in the queue (0: never).
    wait_notice_seconds: Mapped[int] = mapped_column(Integer, default=120)
    # How long a customer may wait for their personal manager, and what happens then ("queue" or "ask").
    manager_wait_seconds: Mapped[int] = mapped_column(Integer, default=900)
    manager_wait_expiry: Mapped[str] = mapped_column(String(8), default="ask")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=now)
