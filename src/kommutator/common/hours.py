"""Business hours (queues, SLA policies, the bot's conditions): open or closed at a moment, and when it opens next.

The definition is ``{"timezone": "Europe/Moscow", "days": {"mon": [["09:00", "18:00"]], ...},
"holidays": ["2026-12-31"]}``; a day without intervals (or a holiday) is closed; an interval may end at
"24:00". ``None`` means always open. Times are wall-clock times in the queue's zone, so daylight saving
changes move the UTC instants, not the opening hours.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


def validate(hours: dict[str, Any] | None) -> list[str]:
    """Problems with a definition, each naming the field (empty when valid)."""
    if hours is None:
        return []
    problems: list[str] = []
    unknown = set(hours) - {"timezone", "days", "holidays"}
    if unknown:
        problems.append(f"business_hours: unknown fields {sorted(unknown)}; use timezone, days, holidays.")
    tz = hours.get("timezone")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"business_hours.timezone: {tz!r} is not a time zone name such as 'Europe/Moscow'.")
    days = hours.get("days")
    if not isinstance(days, dict):
        problems.append("business_hours.days: must map mon..sun to lists of [\"09:00\", \"18:00\"] intervals.")
        days = {}
    for day, intervals in days.items():
        where = f"business_hours.days.{day}"
        if day not in DAYS:
            problems.append(f"{where}: unknown day; use {', '.join(DAYS)}.")
            continue
        if not isinstance(intervals, list):
            problems.append(f"{where}: must be a list of [start, end] pairs.")
            continue
        for i, pair in enumerate(intervals):
            if (not isinstance(pair, list | tuple) or len(pair) != 2
                    or not all(isinstance(t, str) and _TIME.match(t) for t in pair)):
                problems.append(f"{where}[{i}]: must be [\"HH:MM\", \"HH:MM\"] (24-hour clock, end may be 24:00).")
            elif _minutes(pair[0]) >= _minutes(pair[1]):
                problems.append(f"{where}[{i}]: the start {pair[0]} must be before the end {pair[1]}.")
    for i, day in enumerate(hours.get("holidays", []) or []):
        try:
            dt.date.fromisoformat(str(day))
        except ValueError:
            problems.append(f"business_hours.holidays[{i}]: {day!r} is not a date such as 2026-12-31.")
    return problems


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def intervals(hours: dict[str, Any], day: dt.date) -> list[tuple[int, int]]:
    if day.isoformat() in set(map(str, hours.get("holidays", []) or [])):
        return []
    raw = (hours.get("days") or {}).get(DAYS[day.weekday()], [])
    return sorted((_minutes(a), _minutes(b)) for a, b in raw)


def is_open(hours: dict[str, Any] | None, at: dt.datetime) -> bool:
    if hours is None:
        return True
    local = at.astimezone(ZoneInfo(hours["timezone"]))
    minute = local.hour * 60 + local.minute
    return any(a <= minute < b for a, b in intervals(hours, local.date()))


def next_open(hours: dict[str, Any] | None, at: dt.datetime) -> dt.datetime | None:
    """The next moment the queue opens after ``at`` (``at`` itself when open); None if never in 2 weeks."""
    if hours is None or is_open(hours, at):
        return at
    zone = ZoneInfo(hours["timezone"])
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    for offset in range(15):
        day = local.date() + dt.timedelta(days=offset)
        for a, _b in intervals(hours, day):
            if offset == 0 and a <= minute:
                continue
            opening = dt.datetime.combine(day, dt.time(a // 60, a % 60), tzinfo=zone)
            return opening.astimezone(dt.UTC)
    return None
