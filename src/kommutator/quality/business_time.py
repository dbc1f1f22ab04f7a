"""Business time: seconds of opening hours between two instants, and the instant N business seconds later.

Hours use the queues' format (``routing/hours.py``: a time zone, intervals per weekday, holidays); ``None``
means always open, so both functions fall back to wall-clock time. Intervals are wall-clock times in the
zone, turned into UTC day by day, so daylight-saving changes and zones with half-hour offsets come out right.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from kommutator.routing.hours import _intervals

MAX_DAYS = 400  # a definition with no opening in this long never opens


def _merged(raw: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(raw):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _local(day: dt.date, minute: int, zone: ZoneInfo) -> dt.datetime:
    # "24:00" is midnight of the next day.
    return dt.datetime.combine(day + dt.timedelta(days=minute // 1440),
                               dt.time((minute % 1440) // 60, minute % 60), tzinfo=zone)


def open_spans(hours: dict[str, Any], start: dt.datetime, *, days: int = MAX_DAYS) -> Iterator[tuple[dt.datetime,
                                                                                                     dt.datetime]]:
    """The opening intervals in UTC, in order, from the local day before ``start`` on."""
    zone = ZoneInfo(hours["timezone"])
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    for offset in range(days + 1):
        day = first + dt.timedelta(days=offset)
        for a, b in _merged(_intervals(hours, day)):
            s = _local(day, a, zone).astimezone(dt.UTC)
            e = _local(day, b, zone).astimezone(dt.UTC)
            if e > s:
                yield s, e


def business_seconds(hours: dict[str, Any] | None, start: dt.datetime, end: dt.datetime) -> float:
    """Seconds of opening hours in [start, end) (wall-clock seconds when ``hours`` is None)."""
    if end <= start:
        return 0.0
    if hours is None:
        return (end - start).total_seconds()
    span_days = (end - start).days + 2
    total = 0.0
    for s, e in open_spans(hours, start, days=min(span_days, MAX_DAYS * 10)):
        if s >= end:
            break
        lo, hi = max(s, start), min(e, end)
        if hi > lo:
            total += (hi - lo).total_seconds()
    return total


def instant_after(hours: dict[str, Any] | None, start: dt.datetime, seconds: float) -> dt.datetime | None:
    """The instant when ``seconds`` of opening hours have passed since ``start``; None if the hours never open."""
    if hours is None:
        return start + dt.timedelta(seconds=seconds)
    remaining = max(0.0, seconds)
    if remaining == 0:
        return start
    for s, e in open_spans(hours, start):
        if e <= start:
            continue
        lo = max(s, start)
        available = (e - lo).total_seconds()
        if remaining <= available:
            return lo + dt.timedelta(seconds=remaining)
        remaining -= available
    return None
