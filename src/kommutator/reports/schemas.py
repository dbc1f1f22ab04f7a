"""Wire formats of /api/v1/reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class MetricRead(BaseModel):
    name: str = Field(description="snake_case name, the metric= of the time series")
    unit: str = Field(description="seconds, percent, score or count")
    anchor: str = Field(description="started, resolved or rated: the moment that puts a conversation in a period")
    title: dict[str, str]
    definition: dict[str, str] = Field(description="What the metric means, in ru and en")
    has_business_time: bool
    in_series: bool = Field(description="False for metrics not counted per conversation (occupancy)")
    higher_is_better: bool


class MetricList(BaseModel):
    items: list[MetricRead]


class Period(BaseModel):
    start: dt.datetime
    end: dt.datetime = Field(description="Exclusive")
    tz: str


class DistributionRead(BaseModel):
    count: int
    mean: float | None
    median: float | None
    p90: float | None


class Figure(BaseModel):
    name: str
    unit: str
    value: float | None = Field(description="Sum for counts; the mean (× 100 for percent) otherwise")
    distribution: DistributionRead
    previous_value: float | None = None
    change: float | None = Field(None, description="value − previous_value")


class Group(BaseModel):
    key: Any = Field(description="The cut's value (an id, a channel type or a label); null: none")
    name: str = ""
    figures: list[Figure]


class Summary(BaseModel):
    period: Period
    previous: Period
    clock: str
    filters: dict[str, Any]
    group_by: str | None
    figures: list[Figure] = Field(description="The whole period (with group_by: all groups together)")
    groups: list[Group] = Field(default_factory=list)


class Point(BaseModel):
    start: dt.datetime = Field(description="The bucket's local start, with the zone's offset")
    value: float | None
    count: int


class Series(BaseModel):
    key: Any = None
    name: str = ""
    points: list[Point]


class TimeSeries(BaseModel):
    metric: str
    unit: str
    interval: str
    clock: str
    period: Period
    series: list[Series]


class AgentRow(BaseModel):
    agent_id: int | None
    name: str
    figures: list[Figure]
    occupancy: float | None = Field(None, description="Percent of online time with at least one active conversation")


class AgentReport(BaseModel):
    period: Period
    clock: str
    items: list[AgentRow]


class ConversationFact(BaseModel):
    conversation_id: int
    channel_id: int | None
    channel_type: str | None
    team_id: int | None
    queue_id: int | None
    agent_id: int | None
    bot_flow_id: int | None
    labels: list[str]
    started_at: dt.datetime
    handoff_at: dt.datetime | None
    assigned_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    rated_at: dt.datetime | None
    conversations: int
    messages_in: int
    messages_out: int
    resolutions: int | None
    reopens: int
    transfers: int
    wait_s: float | None
    wait_bs: float | None
    first_response_s: float | None
    first_response_bs: float | None
    response_s: float | None
    response_bs: float | None
    responses: int
    handle_s: float | None
    handle_bs: float | None
    resolution_s: float | None
    resolution_bs: float | None
    service_level: int | None
    service_level_bs: int | None
    sla_compliance: int | None
    abandonment: int | None
    bot_containment: int | None
    csat: int | None
    csat_score: int | None
    nps: int | None
    nps_score: int | None


class ConversationFactList(BaseModel):
    items: list[ConversationFact]
    next_cursor: str | None = None


class HeatCell(BaseModel):
    weekday: int = Field(description="0 Monday … 6 Sunday, in tz")
    hour: int = Field(description="0–23, in tz")
    value: float | None = Field(description="Sum for counts; the mean (× 100 for percent) otherwise")
    count: int


class Heatmap(BaseModel):
    metric: str
    unit: str
    period: Period
    cells: list[HeatCell] = Field(description="7 × 24 cells, Monday 00:00 first")


class Counted(BaseModel):
    name: str
    count: int


class IntentCount(BaseModel):
    name: str = Field(description="The intent's name (shipped or defined under Bot → Intents)")
    count: int = Field(description="Customer messages in the period in which the bot recognised it")
    contained: int = Field(description="Of them, in conversations the bot served without people")
    handed_off: int = Field(description="Of them, in conversations the bot handed to people")


class BotReport(BaseModel):
    period: Period
    handoff_reasons: list[Counted] = Field(description="Why the bot handed conversations to people, most first")
    menu_choices: list[Counted] = Field(description="Menu choices made before a hand-off, most first")
    top_intents: list[IntentCount] = Field(default_factory=list, description="The intents the bot recognised "
                                           "most often in customers' messages, most first (at most 20)")


class ScoreCount(BaseModel):
    scale: str = Field(description="csat (1–5) or nps (0–10)")
    score: int
    count: int


class RatingComment(BaseModel):
    conversation_id: int
    scale: str
    score: int
    comment: str
    at: dt.datetime | None
    agent_id: int | None
    agent: str = ""


class RatingsReport(BaseModel):
    period: Period
    distribution: list[ScoreCount]
    comments: list[RatingComment] = Field(description="The newest 100 ratings of the period with a comment")
