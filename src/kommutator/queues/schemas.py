"""Queues on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from kommutator.common.schemas import MAX_ID, ReadModel, Strict


class RequiredSkill(Strict):
    skill_id: int = Field(ge=1, le=MAX_ID)
    min_level: int = Field(default=1, ge=1, le=5)


class _QueueFields(BaseModel):
    description: str | None = Field(default=None, max_length=2000)
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Only this team's agents serve it")
    priority: int | None = Field(default=None, ge=-100, le=100, description="Higher queues are served first")
    required_skills: list[RequiredSkill] | None = Field(default=None, max_length=20)
    strategy: str | None = Field(default=None, max_length=40, description="See GET /routing/strategies")
    business_hours: dict[str, Any] | None = Field(
        default=None, description='{"timezone": "Europe/Moscow", "days": {"mon": [["09:00", "18:00"]]}, '
                                  '"holidays": ["2026-12-31"]}; null: always open')
    sl_target_percent: int | None = Field(default=None, ge=1, le=100)
    sl_target_seconds: int | None = Field(default=None, ge=1, le=86400)
    accept_timeout_seconds: int | None = Field(default=None, ge=0, le=3600, description="0: no timeout")
    wait_notice_seconds: int | None = Field(default=None, ge=0, le=86400, description="0: no wait notices")
    manager_wait_seconds: int | None = Field(default=None, ge=60, le=7 * 86400)
    manager_wait_expiry: Literal["ask", "queue"] | None = Field(
        default=None, description="When the wait for a personal manager runs out: ask the customer again, or "
                                  "route to the queue")
    enabled: bool | None = None


class QueueCreate(_QueueFields, Strict):
    name: str = Field(min_length=1, max_length=100)


class QueueUpdate(_QueueFields, Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class QueueRead(ReadModel):
    id: int
    name: str
    description: str
    team_id: int | None
    priority: int
    required_skills: list[dict[str, Any]]
    strategy: str
    business_hours: dict[str, Any] | None
    sl_target_percent: int
    sl_target_seconds: int
    accept_timeout_seconds: int
    wait_notice_seconds: int
    manager_wait_seconds: int
    manager_wait_expiry: str
    enabled: bool
    created_at: dt.datetime
    waiting: int = Field(0, description="Conversations waiting in the queue now")
    longest_wait_seconds: float = 0
    open_now: bool = True


class StrategyRead(BaseModel):
    name: str
    title: str
