"""The week's forecast of a queue (arrivals, handle time, agents by Erlang C) and its accuracy in past weeks."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.forecast import erlang, queries
from kommutator.forecast.method import WEEK, Trend, errors, slot_forecast, trend, weekly_totals
from kommutator.forecast.slots import Slot, day_slots, days, local_key, midnight
from kommutator.queues.models import Queue

DEFAULT_AHT_SECONDS = 300.0  # when the queue has no handled conversation in the history yet


@dataclass(frozen=True)
class Params:
    weeks: int = 6  # how many past weeks of the same slot are averaged
    target_percent: float = 80.0
    target_seconds: int = 60
    arrivals_multiplier: float = 1.0
    aht_seconds: float | None = None  # None: the average handle time of the history
    shrinkage: float = 0.3  # share of paid time agents are not available (breaks, training, absence)
    concurrency: int = 1  # conversations an agent handles at once


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def queue_zone(queue: Queue, tz: str | None) -> ZoneInfo:
    """The zone slots are aligned to: the one asked for, else the queue's business hours', else UTC."""
    name = tz or (queue.business_hours or {}).get("timezone") or "UTC"
    return ZoneInfo(str(name))


class History:
    """A queue's arrivals read once, with their counts per local slot."""

    def __init__(self, arrivals: Sequence[dt.datetime], first: dt.datetime | None, tz: ZoneInfo) -> None:
        self.arrivals = arrivals
        self.tz = tz
        # The history begins at the local midnight of the first arrival: that day's quiet morning is real.
        self.start = midnight(first.astimezone(tz).date(), tz) if first is not None else None
        self.counts: Counter[tuple[dt.date, int, int]] = Counter(local_key(at, tz) for at in arrivals)
        self._slots: dict[tuple[dt.date, int, int], Slot] = {}
        self._days: set[dt.date] = set()

    def slots_between(self, first: dt.date, last: dt.date) -> dict[tuple[dt.date, int, int], Slot]:
        day = first
        while day <= last:
            if day not in self._days:
                self._days.add(day)
                for slot in day_slots(day, self.tz):
                    self._slots[slot.key] = slot
            day += dt.timedelta(days=1)
        return self._slots

    def forecast(self, start: dt.date, *, cutoff: dt.datetime, weeks: int) -> tuple[list[Slot], list[float], Trend]:
        """Arrivals per slot of the 7 local days from ``start``, knowing only what happened before ``cutoff``."""
        target = [slot for day in days(start, 7) for slot in day_slots(day, self.tz)]
        gap = max(0.0, (target[0].start - cutoff) / WEEK)
        back = weeks + math.ceil(gap) + 2
        samples = self.slots_between(start - dt.timedelta(days=7 * back), start + dt.timedelta(days=6))
        before = [at for at in self.arrivals if at < cutoff]
        tr = trend(weekly_totals(before, cutoff=cutoff, history_start=self.start, weeks=weeks),
                   weeks=weeks, gap_weeks=gap)
        values = [slot_forecast(slot, self.counts, samples, cutoff=cutoff, history_start=self.start,
                                weeks=weeks)[0] * tr.factor for slot in target]
        return target, values, tr

    def actual(self, slots: Sequence[Slot]) -> list[int]:
        return [self.counts.get(slot.key, 0) for slot in slots]


async def load_history(s: AsyncSession, queue: Queue, tz: ZoneInfo, *, since: dt.datetime,
                       until: dt.datetime) -> History:
    first = await queries.first_arrival(s, queue_id=queue.id)
    return History(await queries.arrivals(s, queue_id=queue.id, since=since, until=until), first, tz)


def _round(x: float, n: int = 2) -> float:
    return round(x, n)


async def week_forecast(s: AsyncSession, queue: Queue, *, tz: ZoneInfo, start: dt.date, now: dt.datetime,
                        params: Params) -> dict[str, Any]:
    """Arrivals, traffic and agents per half hour of the week from ``start``, from history before now."""
    start_at = midnight(start, tz)
    cutoff = min(now, start_at)
    gap_weeks = math.ceil(max(0.0, (start_at - cutoff) / WEEK))
    since = start_at - WEEK * (params.weeks + gap_weeks + 3)
    history = await load_history(s, queue, tz, since=since, until=cutoff)
    slots, values, tr = history.forecast(start, cutoff=cutoff, weeks=params.weeks)
    handled = await queries.handle_times(s, queue_id=queue.id, since=cutoff - WEEK * params.weeks, until=cutoff)
    history_aht = sum(handled) / len(handled) if handled else None
    if params.aht_seconds is not None:
        aht, source = params.aht_seconds, "override"
    elif history_aht is not None:
        aht, source = history_aht, "history"
    else:
        aht, source = DEFAULT_AHT_SECONDS, "default"
    out_slots: list[dict[str, Any]] = []
    per_day: dict[dt.date, dict[str, Any]] = {d: {"date": d, "arrivals": 0.0, "peak_agents": 0,
                                                  "peak_agents_scheduled": 0, "agent_hours": 0.0}
                                              for d in days(start, 7)}
    for slot, base in zip(slots, values, strict=True):
        arrivals = base * params.arrivals_multiplier
        seconds = (slot.end - slot.start).total_seconds()
        st = erlang.staff(arrivals=arrivals, interval_seconds=seconds, aht=aht,
                          target_seconds=params.target_seconds, target_fraction=params.target_percent / 100)
        agents = math.ceil(st.servers / params.concurrency)
        scheduled = math.ceil(agents / (1 - params.shrinkage) - 1e-9)
        out_slots.append({
            "start": slot.start, "end": slot.end, "date": slot.day, "time": slot.label, "fold": slot.fold,
            "arrivals": _round(arrivals), "traffic_erlangs": _round(st.traffic, 3), "agents": agents,
            "agents_scheduled": scheduled, "service_level": _round(100 * st.service_level, 1),
            "occupancy": _round(100 * st.occupancy, 1), "average_wait_seconds": _round(st.average_wait_seconds, 1)})
        day = per_day[slot.day]
        day["arrivals"] += arrivals
        day["peak_agents"] = max(day["peak_agents"], agents)
        day["peak_agents_scheduled"] = max(day["peak_agents_scheduled"], scheduled)
        day["agent_hours"] += agents * seconds / 3600
    for day in per_day.values():
        day["arrivals"] = _round(day["arrivals"], 1)
        day["agent_hours"] = _round(day["agent_hours"], 1)
    total_arrivals = sum(x["arrivals"] for x in out_slots)
    return {
        "queue_id": queue.id, "queue_name": queue.name, "timezone": tz.key, "start": start,
        "end": start + dt.timedelta(days=6), "cutoff": cutoff,
        "history": {"weeks": params.weeks, "first_arrival": history.start, "weekly_totals": tr.weekly_totals,
                    "trend_factor": _round(tr.factor, 3), "trend_slope_per_week": _round(tr.slope_per_week, 2),
                    "handled_conversations": len(handled),
                    "average_handle_seconds": None if history_aht is None else _round(history_aht, 1)},
        "params": {"target_percent": params.target_percent, "target_seconds": params.target_seconds,
                   "arrivals_multiplier": params.arrivals_multiplier, "aht_seconds": _round(aht, 1),
                   "aht_source": source, "shrinkage": params.shrinkage, "concurrency": params.concurrency},
        "totals": {"arrivals": _round(total_arrivals, 1),
                   "agent_hours": _round(sum(d["agent_hours"] for d in per_day.values()), 1),
                   "peak_agents": max((x["agents"] for x in out_slots), default=0),
                   "peak_agents_scheduled": max((x["agents_scheduled"] for x in out_slots), default=0)},
        "days": list(per_day.values()), "slots": out_slots}


async def accuracy(s: AsyncSession, queue: Queue, *, tz: ZoneInfo, weeks_back: int, now: dt.datetime,
                   params: Params) -> dict[str, Any]:
    """Each of the last ``weeks_back`` whole local weeks (Monday to Sunday): its forecast made from history before
    it began, against what arrived."""
    this_week = monday(now.astimezone(tz).date())
    starts = [this_week - dt.timedelta(days=7 * j) for j in range(weeks_back, 0, -1)]
    since = midnight(starts[0], tz) - WEEK * (params.weeks + 3)
    history = await load_history(s, queue, tz, since=since, until=midnight(this_week, tz))
    out_weeks = []
    all_f: list[float] = []
    all_a: list[int] = []
    all_days_f: list[float] = []
    all_days_a: list[int] = []
    for start in starts:
        cutoff = midnight(start, tz)
        slots, forecast, _ = history.forecast(start, cutoff=cutoff, weeks=params.weeks)
        actual = history.actual(slots)
        all_f += forecast
        all_a += actual
        per_day: dict[dt.date, list[float]] = {d: [0.0, 0.0] for d in days(start, 7)}
        for slot, f, a in zip(slots, forecast, actual, strict=True):
            per_day[slot.day][0] += f
            per_day[slot.day][1] += a
        known = history.start is not None and history.start < cutoff
        daily = errors([v[0] for v in per_day.values()], [int(v[1]) for v in per_day.values()])
        all_days_f += [v[0] for v in per_day.values()]
        all_days_a += [int(v[1]) for v in per_day.values()]
        out_weeks.append({
            "start": start, "end": start + dt.timedelta(days=6), "forecast_total": _round(sum(forecast), 1),
            "actual_total": sum(actual), "had_history": known, **errors(forecast, actual),
            "day_wape": daily["wape"],
            "days": [{"date": d, "forecast": _round(v[0], 1), "actual": int(v[1])} for d, v in per_day.items()],
            "slots": [{"start": slot.start, "date": slot.day, "time": slot.label, "forecast": _round(f),
                       "actual": a} for slot, f, a in zip(slots, forecast, actual, strict=True)]})
    return {"queue_id": queue.id, "queue_name": queue.name, "timezone": tz.key, "history_weeks": params.weeks,
            "weeks": out_weeks,
            "overall": {**errors(all_f, all_a), "day_wape": errors(all_days_f, all_days_a)["wape"]}}
