"""Wire formats of the quality API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from kommutator.common import hours
from kommutator.common.schemas import MAX_ID, ReadModel, Strict
from kommutator.conversations.schemas import WaitingReason

Seconds = Field(default=None, ge=1, le=90 * 86400)
AlertKind = Literal["sla.warning", "sla.breach", "standard.violation", "csat.negative", "channel.failing",
                    "channel.recovered"]
PhraseLists = dict[Literal["ru", "en"], list[str]]


# What _check_emails accepts, said in the schema too: an @ and no spaces.
EmailText = Annotated[str, Field(max_length=254, pattern=r"^[^\s@]*@[^\s]*$")]
Factor = Annotated[float, Field(ge=0.01, le=10)]
UserId = Annotated[int, Field(ge=1, le=MAX_ID)]


class _PolicyFields(BaseModel):
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=-1000, le=1000, description="Lower is tried first")
    queue_ids: list[int] | None = Field(default=None, max_length=100, description="Empty: any queue")
    channel_types: list[str] | None = Field(default=None, max_length=20, description="Empty: any channel type")
    channel_ids: list[int] | None = Field(default=None, max_length=100)
    contact_attributes: dict[str, list[str]] | None = Field(
        default=None, description='A contact segment, e.g. {"tier": ["vip", "gold"]}; empty: any contact')
    first_response_seconds: int | None = Seconds
    next_response_seconds: int | None = Seconds
    resolution_seconds: int | None = Seconds
    clock: Literal["wall", "business"] | None = None
    business_hours: dict[str, Any] | None = Field(
        default=None, description="For clock=business; null: the conversation's queue's hours")
    warn_percent: int | None = Field(default=None, ge=0, le=99, description="Warn the agent at this share; 0: never")
    priority_factors: dict[Literal["low", "normal", "high", "urgent"], Factor] | None = Field(
        default=None, description='Multiply every target by priority, e.g. {"urgent": 0.25}')
    notify_user_ids: list[UserId] | None = Field(default=None, max_length=50)
    notify_emails: list[EmailText] | None = Field(default=None, max_length=20)

    @field_validator("business_hours")
    @classmethod
    def _hours(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problems = hours.validate(value)
        if problems:
            raise ValueError(" ".join(problems))
        return value

    @field_validator("priority_factors")
    @classmethod
    def _factors(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, factor in (value or {}).items():
            if not 0.01 <= factor <= 10:
                raise ValueError(f"priority_factors.{key} must be between 0.01 and 10, not {factor}")
        return value

    @field_validator("notify_emails")
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        return _check_emails(value)


def _check_emails(value: list[str] | None) -> list[str] | None:
    for address in value or []:
        if "@" not in address or any(c.isspace() for c in address) or len(address) > 254:
            raise ValueError(f"{address!r} is not an email address")
    return value


class PolicyCreate(_PolicyFields, Strict):
    name: str = Field(min_length=1, max_length=100)


class PolicyUpdate(_PolicyFields, Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class PolicyRead(ReadModel):
    id: int
    name: str
    enabled: bool
    position: int
    queue_ids: list[int]
    channel_types: list[str]
    channel_ids: list[int]
    contact_attributes: dict[str, list[str]]
    first_response_seconds: int | None
    next_response_seconds: int | None
    resolution_seconds: int | None
    clock: str
    business_hours: dict[str, Any] | None
    warn_percent: int
    priority_factors: dict[str, float]
    notify_user_ids: list[int]
    notify_emails: list[str]


class RuleFields(BaseModel):
    enabled: bool | None = None
    to_agent: bool | None = None
    to_supervisors: bool | None = None
    user_ids: list[UserId] | None = Field(default=None, max_length=50)
    emails: list[EmailText] | None = Field(default=None, max_length=20)
    telegram_chat_id: str | None = Field(default=None, max_length=64, pattern=r"^$|^-?[0-9]{1,20}$|^@\w{4,60}$")
    telegram_bot_token: str | None = Field(default=None, max_length=100, pattern=r"^$|^[0-9]{3,15}:[\w-]{20,80}$",
                                           description="Write-only; empty string removes it")
    threshold: int | None = Field(default=None, ge=1, le=4, description="csat.negative: alert at this score or less")
    destinations: dict[str, dict[str, Any]] | None = Field(
        default=None, max_length=10,
        description="Settings of further alert destinations by name, e.g. {\"webhook\": {\"url\": …, \"secret\": …}}; "
                    "secrets are write-only (omit one to keep it); an empty object removes the destination")
    language: Literal["", "ru", "en"] | None = Field(
        default=None, description="The language of readers outside the workspace who are not users "
                                  "(emails to other addresses, chats, webhooks); empty: both")

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        return _check_emails(value)


class RuleCreate(RuleFields, Strict):
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="null: teams without a rule of their own")
    kind: AlertKind


class RuleUpdate(RuleFields, Strict):
    pass


class RuleRead(ReadModel):
    id: int
    team_id: int | None
    kind: str
    enabled: bool
    to_agent: bool
    to_supervisors: bool
    user_ids: list[int]
    emails: list[str]
    telegram_chat_id: str
    telegram_bot_token_set: bool
    threshold: int | None
    destinations: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Further destinations' settings; a secret shows as <name>_set: true")
    language: str = ""


class StandardWrite(Strict):
    enabled: bool = True
    greeting_required: bool = True
    greetings: PhraseLists = Field(default_factory=dict, description="Empty list: the built-in greetings")
    forbidden: PhraseLists = Field(default_factory=dict)
    max_reply_gap_seconds: int | None = Field(default=None, ge=10, le=7 * 86400)


class StandardRead(ReadModel):
    id: int
    team_id: int | None
    enabled: bool
    greeting_required: bool
    greetings: dict[str, list[str]]
    forbidden: dict[str, list[str]]
    max_reply_gap_seconds: int | None


class CsatWrite(Strict):
    enabled: bool = True
    scale: Literal["csat", "nps"] = "csat"
    ask_after_bot: bool = False
    ask_comment: bool = True


class CsatRead(ReadModel):
    id: int
    channel_id: int | None
    enabled: bool
    scale: str
    ask_after_bot: bool
    ask_comment: bool


class AlertRead(ReadModel):
    id: int
    kind: str
    severity: str
    conversation_id: int | None
    team_id: int | None
    agent_id: int | None
    title: str
    body: str
    data: dict[str, Any]
    created_at: dt.datetime
    acknowledged_by: int | None
    acknowledged_at: dt.datetime | None


class AlertList(BaseModel):
    items: list[AlertRead]
    unacknowledged: int


class ClockRead(ReadModel):
    id: int
    conversation_id: int
    target: str
    started_at: dt.datetime
    target_seconds: int
    business: bool
    elapsed_seconds: int
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    status: str
    warned_at: dt.datetime | None
    breached_at: dt.datetime | None
    hit_at: dt.datetime | None


class ViolationRead(ReadModel):
    id: int
    conversation_id: int
    message_id: int | None
    agent_id: int | None
    rule: str
    detail: str
    created_at: dt.datetime


class RatingRead(ReadModel):
    id: int
    conversation_id: int
    contact_id: int
    scale: str
    score: int
    comment: str
    channel_id: int | None
    agent_id: int | None
    created_at: dt.datetime


class ConversationQuality(BaseModel):
    clocks: list[ClockRead]
    violations: list[ViolationRead]
    rating: RatingRead | None
    alerts: list[AlertRead]


class WhisperCreate(Strict):
    text: str = Field(min_length=1, max_length=4000)


class WhisperCreated(BaseModel):
    message_id: int


class ServiceLevel(BaseModel):
    percent: float | None = Field(description="Answered within the target today (in the queue's time zone), "
                                               "in %; null before any")
    met: int
    counted: int
    target_percent: int
    target_seconds: int
    day_start: dt.datetime = Field(description="When today began in the queue's time zone (UTC instant)")
    timezone: str = Field(description="The queue's time zone (its business hours'; UTC without them)")


class LiveQueue(BaseModel):
    id: int
    name: str
    team_id: int | None
    waiting: int
    longest_wait_seconds: int
    service_level: ServiceLevel


class LiveAgent(BaseModel):
    id: int
    name: str
    role: str
    presence: str
    capacity: int
    in_progress: int
    load_percent: int
    last_reply_at: dt.datetime | None
    since_last_reply_seconds: int | None


class LiveAtRisk(BaseModel):
    conversation_id: int
    subject: str
    contact_name: str
    status: str
    assignee_id: int | None
    assignee_name: str
    team_id: int | None
    target: str
    due_at: dt.datetime
    seconds_left: int
    breached: bool
    warned: bool


class LiveWaiting(BaseModel):
    conversation_id: int
    subject: str
    contact_name: str
    queue_id: int | None
    team_id: int | None
    queued_at: dt.datetime | None
    waited_seconds: int
    waiting_reason: WaitingReason | None = Field(description="Why no agent has it yet (null before the first "
                                                             "routing pass looked at it)")


class LiveView(BaseModel):
    """The supervisor's live view: queues, agents, the conversations nearest to a missed deadline, and the
    conversations waiting for an agent with why."""

    at: dt.datetime
    queues: list[LiveQueue]
    agents: list[LiveAgent]
    at_risk: list[LiveAtRisk]
    waiting: list[LiveWaiting] = Field(description="Waiting longest first (at most 50), each with why")
    open_alerts: int
