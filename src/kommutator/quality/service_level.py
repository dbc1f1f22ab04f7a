"""Service level: one rule for the live view's "today" and the reports' figure.

A conversation counts from its hand-off to humans (the first transition to queued or assigned — the start of
the first-response SLA clock) to the first agent reply the customer sees. It is *met* when that reply came
within the queue's ``sl_target_seconds``; *missed* when it came later, or when none came and the target has
passed (the live view knows "now"; a report fact, computed from history alone, knows it once the conversation
is resolved); not counted yet otherwise. "Today" is the calendar day in the queue's time zone (its business
hours' ``timezone``; UTC when it has none), so midnight and daylight-saving changes fall where the team's do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

HANDOFF = ("queued", "assigned")


def zone_of(business_hours: dict[str, Any] | None) -> ZoneInfo:
    name = (business_hours or {}).get("timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(at: dt.datetime, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The local calendar day containing ``at``, as UTC instants [start, end) (23 or 25 hours on DST days)."""
    local = at.astimezone(zone).date()
    start = dt.datetime.combine(local, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(local + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def within_target(handoff: dt.datetime | None, first_response: dt.datetime | None, target_seconds: int | None, *,
                  at: dt.datetime | None = None, ended: bool = False,
                  elapsed: float | None = None) -> int | None:
    """1 met, 0 missed, None not counted (no hand-off, no target, or still within it).

    ``elapsed``: the response time already measured (e.g. in business hours), else first_response − handoff.
    ``at``: now, for a live figure; ``ended``: the conversation was resolved."""
    if handoff is None or target_seconds is None:
        return None
    if first_response is not None or elapsed is not None:
        value = elapsed if elapsed is not None else (first_response - handoff).total_seconds()  # type: ignore[operator]
        return int(value <= target_seconds)
    if ended or (at is not None and (at - handoff).total_seconds() > target_seconds):
        return 0
    return None
