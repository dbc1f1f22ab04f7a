"""Half-hour slots of local days: aligned to the local clock, correct across daylight-saving changes.

A local day runs from its midnight to the next midnight (both converted to UTC); its slots are 30-minute
steps of UTC time from the first, so a day has 48 slots, 46 on the day the clocks go forward (02:00 and
02:30 do not exist) and 50 on the day they go back (01:00 and 01:30 happen twice, the second time with
``fold`` 1). Every zone whose offsets are whole half hours keeps the slots on :00 and :30 local.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

SLOT = dt.timedelta(minutes=30)
UTC = dt.UTC


@dataclass(frozen=True)
class Slot:
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC
    day: dt.date  # the local date
    minute: int  # minutes after local midnight on the wall clock (0, 30, …, 1410)
    fold: int  # 1 for the second pass through a repeated local time

    @property
    def key(self) -> tuple[dt.date, int, int]:
        return (self.day, self.minute, self.fold)

    @property
    def label(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"


def midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant the local ``day`` begins (a zone whose midnight is skipped begins at the first minute)."""
    local = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    at = local.astimezone(UTC)
    # A skipped midnight (e.g. a change at 00:00) maps back to the previous day: begin at the day's first instant.
    if at.astimezone(tz).date() != day:
        at = dt.datetime.combine(day, dt.time(1), tzinfo=tz).astimezone(UTC)
    return at


def day_slots(day: dt.date, tz: ZoneInfo) -> list[Slot]:
    start, end = midnight(day, tz), midnight(day + dt.timedelta(days=1), tz)
    out: list[Slot] = []
    seen: set[int] = set()
    at = start
    while at < end:
        local = at.astimezone(tz)
        minute = local.hour * 60 + local.minute
        fold = 1 if minute in seen else 0
        seen.add(minute)
        out.append(Slot(at, min(at + SLOT, end), day, minute - minute % 30, fold))
        at += SLOT
    return out


def days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


def local_key(at: dt.datetime, tz: ZoneInfo) -> tuple[dt.date, int, int]:
    """The slot key of a UTC instant: its local date, the half hour it falls in, and its fold."""
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    fold = local.fold
    return (local.date(), minute - minute % 30, fold)
