"""Business time: seconds of opening hours between two instants, and the instant N business seconds later.

Hours use the queues' format (``common/hours.py``: a time zone, intervals per weekday, holidays); ``None``
means always open, so both functions fall back to wall-clock time. Intervals are wall-clock times in the
zone, turned into UTC day by day, so daylight-saving changes and zones with half-hour offsets come out right.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from kommutator.common.hours import intervals as day_intervals

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


_HOUR = dt.timedelta(hours=1)
_SECOND = dt.timedelta(seconds=1)


def _offset(zone: ZoneInfo, at: dt.datetime) -> dt.timedelta:
    return at.astimezone(zone).utcoffset() or dt.timedelta(0)


def _pieces(zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, dt.datetime, dt.timedelta]]:
    """[lo, hi) cut where the zone's UTC offset changes: (start, end, offset) with one offset each."""
    pieces = []
    start, off = lo, _offset(zone, lo)
    if _offset(zone, hi) == off:
        return [(lo, hi, off)]  # no change in these hours (two changes within two days do not happen)
    t = lo
    while t < hi:
        nxt = min(t + _HOUR, hi)
        if _offset(zone, nxt) != off:
            a, b = t, nxt  # the change is in (a, b]: find the first second of the new offset
            while b - a > _SECOND:
                mid = a + (b - a) / 2
                if _offset(zone, mid) == off:
                    a = mid
                else:
                    b = mid
            b = b.replace(microsecond=0)  # changes fall on whole seconds, and a < change <= b < a + 1 s
            pieces.append((start, b, off))
            start, off = b, _offset(zone, b)
        t = nxt
    pieces.append((start, hi, off))
    return pieces


def _day_spans(hours: dict[str, Any], day: dt.date, zone: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """The instants whose local time falls in the day's opening intervals, as UTC spans.

    Exactly the instants ``common.hours.is_open`` calls open: an interval starting in a spring-forward gap
    opens when the clocks jump; one covering a repeated autumn hour is open in both of its passes.
    """
    intervals = _merged(day_intervals(hours, day))
    if not intervals:
        return []
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)  # local midnight, as if UTC
    spans = []
    for ps, pe, off in _pieces(zone, midnight - dt.timedelta(hours=15), midnight + dt.timedelta(hours=39)):
        for a, b in intervals:
            lo = max(midnight + dt.timedelta(minutes=a) - off, ps)
            hi = min(midnight + dt.timedelta(minutes=b) - off, pe)
            if hi > lo:
                spans.append((lo, hi))
    return sorted(spans)


def open_spans(hours: dict[str, Any], start: dt.datetime, *, days: int = MAX_DAYS) -> Iterator[tuple[dt.datetime,
                                                                                                     dt.datetime]]:
    """The opening intervals in UTC, in order, from the local day before ``start`` on."""
    zone = ZoneInfo(hours["timezone"])
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    for offset in range(days + 1):
        yield from _day_spans(hours, first + dt.timedelta(days=offset), zone)


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
