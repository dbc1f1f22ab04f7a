"""The arrival forecast: a recency-weighted average of the same local half hour in past weeks, moved along
the trend of the weekly totals. Pure functions over counts; docs/forecast.md explains the choice.

For a target slot (local date d, time hh:mm) the samples are the same slot on d−7, d−14, … — the most recent
``weeks`` of them that ended before the cutoff (nothing after the cutoff is known) and began after the
queue's history did (a week before the first arrival is unknown, not zero). Sample i (i = 1 most recent)
weighs ``weeks + 1 − i``. The trend: weekly totals of the last ``weeks`` whole 7-day windows before the
cutoff, fitted by a least-squares line; the weighted average sits ``age`` weeks before the target, so it is
moved by ``slope × age ÷ level`` (clamped to ±50%) — with fewer than three windows there is no trend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kommutator.forecast.slots import Slot

WEEK = dt.timedelta(days=7)
TREND_MIN, TREND_MAX = 0.5, 1.5
MIN_TREND_WINDOWS = 3


@dataclass(frozen=True)
class Trend:
    factor: float
    weekly_totals: list[int]  # oldest first
    slope_per_week: float


def weekly_totals(arrivals: Iterable[dt.datetime], *, cutoff: dt.datetime, history_start: dt.datetime | None,
                  weeks: int) -> list[int]:
    """Arrivals in each whole 7-day window before ``cutoff`` that began after the history did; oldest first."""
    if history_start is None:
        return []
    windows = [j for j in range(1, weeks + 1) if cutoff - j * WEEK >= history_start]
    totals = dict.fromkeys(windows, 0)
    for at in arrivals:
        if at >= cutoff:
            continue
        j = int((cutoff - at) / WEEK) + 1
        if j in totals:
            totals[j] += 1
    return [totals[j] for j in sorted(windows, reverse=True)]


def trend(totals: list[int], *, weeks: int, gap_weeks: float) -> Trend:
    """The factor that moves the weighted average (``gap_weeks``: target start − cutoff) to the target week."""
    n = len(totals)
    if n < MIN_TREND_WINDOWS or sum(totals) == 0:
        return Trend(1.0, totals, 0.0)
    xs = [float(i - n) for i in range(n)]  # the last window is x = −1 … weeks before the cutoff
    mean_x, mean_y = sum(xs) / n, sum(totals) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, totals, strict=True)) / sxx
    # The weighted average's weights by recency (1 = the most recent window).
    w = [weeks + 1 - i for i in range(1, n + 1)]
    level = sum(wi * totals[n - i] for i, wi in enumerate(w, start=1)) / sum(w)
    if level <= 0:
        return Trend(1.0, totals, slope)
    # Window i is centred i − 0.5 weeks before the cutoff; the target week's centre 0.5 weeks after its start.
    age = sum(wi * (i - 0.5) for i, wi in enumerate(w, start=1)) / sum(w) + gap_weeks + 0.5
    factor = min(TREND_MAX, max(TREND_MIN, 1.0 + slope * age / level))
    return Trend(factor, totals, slope)


def slot_forecast(target: Slot, counts: Mapping[tuple[dt.date, int, int], int],
                  sample_slots: Mapping[tuple[dt.date, int, int], Slot], *, cutoff: dt.datetime,
                  history_start: dt.datetime | None, weeks: int) -> tuple[float, int]:
    """The weighted average of the same slot in past weeks and how many samples it had."""
    if history_start is None:
        return 0.0, 0
    total = weight = 0.0
    used = 0
    back = 1
    while used < weeks and back <= weeks + 60:
        day = target.day - dt.timedelta(days=7 * back)
        back += 1
        key = (day, target.minute, target.fold)
        sample = sample_slots.get(key) or sample_slots.get((day, target.minute, 0))
        if sample is None:
            if day < history_start.date() - dt.timedelta(days=1):
                break
            continue  # the local time did not exist that day (clocks forward), or lies beyond what was read
        if sample.end > cutoff:
            continue
        if sample.start < history_start:
            break
        used += 1
        w = weeks + 1 - used
        total += w * counts.get(sample.key, 0)
        weight += w
    return (total / weight if weight else 0.0), used


def errors(forecast: list[float], actual: list[int]) -> dict[str, float | None]:
    """WAPE (Σ|F−A| ÷ ΣA) and MAPE (mean |F−A| ÷ A over slots with arrivals), as percentages."""
    abs_err = [abs(f - a) for f, a in zip(forecast, actual, strict=True)]
    total = sum(actual)
    wape = 100 * sum(abs_err) / total if total else None
    apes = [e / a for e, a in zip(abs_err, actual, strict=True) if a > 0]
    mape = 100 * sum(apes) / len(apes) if apes else None
    return {"wape": None if wape is None else round(wape, 1), "mape": None if mape is None else round(mape, 1)}
