"""Wire formats of bot flows: create, update, read, list, versions, validation results, bot sessions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field

from kommutator.common.schemas import MAX_ID, ReadModel, Strict

MAX_SOURCE = 500_000  # characters of a definition's JSON or YAML text
ChannelId = Annotated[int, Field(ge=1, le=MAX_ID)]


class FlowProblem(ReadModel):
    where: str = Field(description="Dotted path in the definition, e.g. nodes.ask_order.next")
    message: str
    level: Literal["error", "warning"]


class FlowCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    enabled: bool = True
    channel_ids: list[ChannelId] = Field(default_factory=list, max_length=100,
                                  description="Channels whose new conversations this flow greets (taken from "
                                              "another flow if attached there)")
    definition: dict[str, Any] | None = Field(None, description="The flow (docs/bot.md); or give `source`")
    source: str | None = Field(None, max_length=MAX_SOURCE,
                               description="The definition as JSON or YAML text (instead of `definition`)")


class FlowUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = Field(None, max_length=2000)
    enabled: bool | None = None
    channel_ids: list[ChannelId] | None = Field(None, max_length=100)
    definition: dict[str, Any] | None = Field(None, description="A changed definition saves a new version")
    source: str | None = Field(None, max_length=MAX_SOURCE)


class FlowValidate(Strict):
    definition: dict[str, Any] | None = None
    source: str | None = Field(None, max_length=MAX_SOURCE)


class FlowSummary(ReadModel):
    id: int
    name: str
    description: str
    enabled: bool
    version: int
    channel_ids: list[int] = []
    created_at: dt.datetime
    updated_at: dt.datetime


class FlowRead(FlowSummary):
    definition: dict[str, Any]
    warnings: list[FlowProblem] = []


class FlowList(ReadModel):
    items: list[FlowSummary]


class FlowVersionRead(ReadModel):
    version: int
    created_at: dt.datetime
    created_by_id: int | None
    definition: dict[str, Any] | None = None


class FlowVersionList(ReadModel):
    items: list[FlowVersionRead]


class ValidationResult(ReadModel):
    valid: bool
    problems: list[FlowProblem]


class BotSessionRead(ReadModel):
    conversation_id: int
    flow_id: int | None
    flow_version: int
    status: str = Field(description="active, handoff, resolved or stopped")
    outcome: str = Field(description="contained (resolved by the bot), handed_off, abandoned, taken_over or ''")
    summary: str = Field(description="What the bot collected, for the agent (set on hand-off)")
    node: str | None
    language: str
    vars: dict[str, Any]
    trail: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
