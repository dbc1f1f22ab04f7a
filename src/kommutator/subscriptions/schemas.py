"""Request and response bodies of /api/v1/subscriptions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field, HttpUrl, field_validator

from kommutator.common.schemas import ReadModel, Strict
from kommutator.subscriptions.catalogue import TYPES

# An event type: one of the catalogue's names (an enum in the OpenAPI document; checked again below).
EventType = Annotated[str, Field(json_schema_extra={"enum": sorted(TYPES)})]


def _known(types: list[str]) -> list[str]:
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; GET /api/v1/subscriptions/event-types lists them")
    return list(dict.fromkeys(types))


class SubscriptionCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    url: HttpUrl = Field(description="Where events are POSTed (http or https; the outbound guard applies)")
    event_types: list[EventType] = Field(min_length=1, max_length=len(TYPES),
                                   description="Public event types (GET /api/v1/subscriptions/event-types)")
    enabled: bool = True

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        return _known(value)


class SubscriptionUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    url: HttpUrl | None = None
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=len(TYPES))
    enabled: bool | None = Field(None, description="Turning a subscription on sends the events still owed to it")

    @field_validator("event_types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known(value)


class SubscriptionRead(ReadModel):
    id: int
    name: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str = Field(description='"failing" when the server turned it off after persistent failure')
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    pending: int = Field(0, description="Deliveries still owed")
    failed: int = Field(0, description="Deliveries given up on (replay them from the log)")
    created_at: dt.datetime


class SubscriptionCreated(SubscriptionRead):
    secret: str = Field(description="The signing secret (whsec_…); shown only now and after a rotation")


class SecretRead(ReadModel):
    secret: str


class EventTypeRead(ReadModel):
    type: str
    description: str
    description_ru: str


class AttemptRead(ReadModel):
    at: dt.datetime
    status_code: int | None
    error: str
    duration_ms: int
    response_excerpt: str


class DeliveryRead(ReadModel):
    id: int
    event_id: str
    event_type: str
    order_key: str
    occurred_at: dt.datetime
    status: str = Field(description="pending, sending, delivered or failed")
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str
    delivered_at: dt.datetime | None


class DeliveryDetail(DeliveryRead):
    body: dict[str, Any] = Field(description="What is sent (read now: the current state of the subject)")
    attempt_log: list[AttemptRead]


class DeliveryList(ReadModel):
    items: list[DeliveryRead]
    next_before_id: int | None = Field(None, description="Pass as before_id for the next (older) page")


class TestResult(ReadModel):
    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
