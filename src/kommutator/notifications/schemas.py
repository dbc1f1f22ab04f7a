"""Wire formats of notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kommutator.common.schemas import ReadModel


class NotificationRead(ReadModel):
    id: int
    kind: str
    severity: str
    title: str
    body: str
    conversation_id: int | None
    data: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationList(ReadModel):
    items: list[NotificationRead]
    unread: int
