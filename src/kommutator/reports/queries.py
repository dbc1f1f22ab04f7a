"""Report reads: the period in a time zone, cuts (filters and group-by), distributions and time series.

Headline figures, distributions and time series read the hourly rollups (per histogram bucket, so medians and
percentiles come from summed buckets), unless a label is involved (labels are not a rollup key), when they read
the fact rows (one per conversation).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, Table, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.conversations.models import ConversationLabel
from kommutator.errors import ProblemError
from kommutator.reports.actions import ALL_AGENTS
from kommutator.reports.histogram import Histogram
from kommutator.reports.metrics import Metric, get, metrics
from kommutator.reports.models import ReportDaily, ReportFact, ReportHourly

_facts = cast(Table, ReportFact.__table__)
_hourly = cast(Table, ReportHourly.__table__)
_daily = cast(Table, ReportDaily.__table__)

# Cut name (API) -> fact/rollup column; "label" is a join.
CUTS = {"channel_type": "channel_type", "channel": "channel_id", "team": "team_id", "queue": "queue_id",
        "agent": "agent_id", "label": None, "bot_flow": "bot_flow_id"}
INTERVALS = ("hour", "day", "week", "month")
CLOCKS = ("wall", "business")
MAX_HOURLY = dt.timedelta(days=731)
MAX_PERIOD = dt.timedelta(days=3660)
ANCHOR_AT = {"started": "started_at", "resolved": "resolved_at", "rated": "rated_at"}


def check_metric(name: str) -> Metric:
    m = get(name)
    if m is None:
        raise ProblemError(422, "unknown_metric", f"There is no metric {name!r}; use one of: "
                           f"{', '.join(sorted(metrics()))}.")
    return m


def check_cut(name: str) -> str:
    if name not in CUTS:
        raise ProblemError(422, "unknown_cut", f"There is no cut {name!r}; group or filter by one of: "
                           f"{', '.join(CUTS)}.")
    return name


def check_zone(name: str) -> ZoneInfo:
    try:
        if not name or len(name) > 64:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProblemError(422, "invalid_time_zone", f"{name!r} is not a time zone; use an IANA name such as "
                           "'Europe/Moscow' or 'UTC'.") from None


@dataclass(frozen=True)
class Scope:
    """What a report covers: [start, end) in UTC (local midnights of the zone), its zone, filters, clock."""

    start: dt.datetime
    end: dt.datetime
    zone: ZoneInfo
    filters: dict[str, Any] = field(default_factory=dict)  # cut name -> value
    clock: str = "wall"

    def previous(self) -> Scope:
        span = self.end - self.start
        return Scope(self.start - span, self.start, self.zone, self.filters, self.clock)


def make_scope(*, start: dt.date | None, end: dt.date | None, tz: str, filters: dict[str, Any], clock: str,
               today: dt.datetime) -> Scope:
    """The period from ``start`` to ``end`` inclusive, as local days of ``tz`` (default: the last 30 days)."""
    zone = check_zone(tz)
    if clock not in CLOCKS:
        raise ProblemError(422, "unknown_clock", f"clock must be one of: {', '.join(CLOCKS)}.")
    local_today = today.astimezone(zone).date()
    end = end or local_today
    start = start or end - dt.timedelta(days=29)
    if start > end:
        raise ProblemError(422, "invalid_period", f"The period's start {start} is after its end {end}; swap them.")
    lo = dt.datetime.combine(start, dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
    if hi - lo > MAX_PERIOD:
        raise ProblemError(422, "period_too_long", "A report covers at most 10 years; choose a shorter period.")
    for cut in filters:
        check_cut(cut)
    return Scope(lo, hi, zone, {k: v for k, v in filters.items() if v is not None}, clock)


def _filtered(stmt: Select[Any], table: Table, filters: dict[str, Any]) -> Select[Any]:
    for cut, value in filters.items():
        col = CUTS[cut]
        if col is None:
            stmt = stmt.where(exists().where(ConversationLabel.conversation_id == table.c.conversation_id,
                                             ConversationLabel.label == value))
        else:
            stmt = stmt.where(table.c[col] == value)
    return stmt


def _group_col(stmt: Select[Any], table: Table, group_by: str | None) -> tuple[Select[Any], Any]:
    if group_by is None:
        return stmt, None
    col = CUTS[group_by]
    if col is None:
        label = cast(Table, ConversationLabel.__table__)
        stmt = stmt.join(label, label.c.conversation_id == table.c.conversation_id)
        return stmt, label.c.label
    return stmt, table.c[col]


@dataclass
class Distribution:
    count: int = 0
    total: float = 0.0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


def distribution(values: Sequence[float]) -> Distribution:
    """Count, sum, mean, median and 90th percentile (nearest rank) of the values."""
    if not values:
        return Distribution()
    ordered = sorted(values)
    n = len(ordered)
    return Distribution(count=n, total=float(sum(ordered)), mean=sum(ordered) / n,
                        median=float(statistics.median(ordered)), p90=float(ordered[max(0, math.ceil(0.9 * n) - 1)]))


def headline(metric: Metric, d: Distribution) -> float | None:
    """The metric's figure: the sum of a count, the scaled mean of anything else."""
    if metric.unit == "count":
        return d.total
    return None if d.mean is None else d.mean * metric.scale


def _whole_hours(scope: Scope) -> bool:
    """Whether the period starts and ends on whole UTC hours, so that the hourly rollups cover it exactly."""
    return all(t.minute == t.second == t.microsecond == 0 for t in (scope.start, scope.end))


def _of(h: Histogram) -> Distribution:
    n = h.count
    total = h.total
    return Distribution(count=n, total=total, mean=total / n if n else None, median=h.median(), p90=h.p90())


async def histograms(session: AsyncSession, scope: Scope, names: Sequence[str], *,
                     group_by: str | None = None) -> dict[Any, dict[str, Histogram]]:
    """Each metric's histogram over the period, per group (key None without ``group_by``).

    From the hourly rollups (summed buckets: no conversation is read), unless a label is involved (labels are not
    a rollup key) or the period does not start and end on whole UTC hours (zones such as India's): then from the
    facts, bucketed the same way."""
    by_col: dict[str, list[str]] = defaultdict(list)
    anchor_of: dict[str, str] = {}
    for name in names:
        m = check_metric(name)
        col = m.column_for(scope.clock)
        if col:
            by_col[col].append(m.name)
            anchor_of[col] = m.anchor
    out: dict[Any, dict[str, Histogram]] = defaultdict(dict)

    def hist(k: Any, col: str) -> list[Histogram]:
        return [out[k].setdefault(name, Histogram()) for name in by_col[col]]

    if not by_col:
        return out
    agent = scope.filters.get("agent")
    if (group_by in (None, "agent") and set(scope.filters) <= {"agent"} and _whole_hours(scope)):
        # Whole UTC days from the daily histograms (all agents together, or per agent), the hours at the period's
        # edges from the hourly ones.
        d0 = scope.start.replace(hour=0)
        d0 = d0 if d0 == scope.start else d0 + dt.timedelta(days=1)
        d1 = scope.end.replace(hour=0)
        spans = [(scope.start, scope.end)]

        def key_of(agent_id: Any) -> Any:
            return None if group_by is None else (agent_id or None)

        if d0 < d1:
            spans = [(a, b) for a, b in ((scope.start, d0), (d1, scope.end)) if a < b]
            d = _daily.c
            stmt0 = (select(d.metric, d.bucket, func.sum(d.n), func.sum(d.total), d.agent_key)
                     .where(d.day >= d0, d.day < d1, d.metric.in_(sorted(by_col)))
                     .group_by(d.metric, d.bucket, d.agent_key))
            if agent is not None:
                stmt0 = stmt0.where(d.agent_key == agent)
            elif group_by == "agent":
                stmt0 = stmt0.where(d.agent_key >= 0)  # every agent (0: none); ALL_AGENTS is -1
            else:
                stmt0 = stmt0.where(d.agent_key == ALL_AGENTS)
            for row in (await session.execute(stmt0)).all():
                for one in hist(key_of(row[4]), row[0]):
                    one.add(int(row[1]), int(row[2] or 0), float(row[3] or 0.0))
        for a, b in spans:
            h = _hourly.c
            stmt1 = (select(h.metric, h.bucket, func.sum(h.n), func.sum(h.total), h.agent_id)
                     .where(h.hour >= a, h.hour < b, h.metric.in_(sorted(by_col))))
            if agent is not None:
                stmt1 = stmt1.where(h.agent_id == agent)
            if group_by == "agent":
                stmt1 = stmt1.group_by(h.metric, h.bucket, h.agent_id)
            else:
                stmt1 = stmt1.with_only_columns(h.metric, h.bucket, func.sum(h.n), func.sum(h.total),
                                                func.min(h.agent_id)).group_by(h.metric, h.bucket)
            for row in (await session.execute(stmt1)).all():
                for one in hist(key_of(row[4]), row[0]):
                    one.add(int(row[1]), int(row[2] or 0), float(row[3] or 0.0))
        return out
    if group_by != "label" and "label" not in scope.filters and _whole_hours(scope):
        h = _hourly.c
        stmt: Select[Any] = (select(h.metric, h.bucket, func.sum(h.n), func.sum(h.total))
                             .where(h.hour >= scope.start, h.hour < scope.end, h.metric.in_(sorted(by_col))))
        for cut, value in scope.filters.items():
            stmt = stmt.where(h[cast(str, CUTS[cut])] == value)
        if group_by is not None:
            gcol = h[cast(str, CUTS[group_by])]
            stmt = stmt.add_columns(gcol).group_by(h.metric, h.bucket, gcol)
        else:
            stmt = stmt.group_by(h.metric, h.bucket)
        for row in (await session.execute(stmt)).all():
            k = row[4] if group_by is not None else None
            for one in hist(k, row[0]):
                one.add(int(row[1]), int(row[2] or 0), float(row[3] or 0.0))
        return out
    by_anchor: dict[str, list[str]] = defaultdict(list)
    for col, anchor in anchor_of.items():
        by_anchor[anchor].append(col)
    for anchor, cols in by_anchor.items():
        at = _facts.c[ANCHOR_AT[anchor]]
        fstmt: Select[Any] = select(*[_facts.c[c] for c in cols]).where(at >= scope.start, at < scope.end)
        fstmt, key = _group_col(fstmt, _facts, group_by)
        if key is not None:
            fstmt = fstmt.add_columns(key)
        for row in (await session.execute(_filtered(fstmt, _facts, scope.filters))).all():
            k = row[-1] if key is not None else None
            for i, col in enumerate(cols):
                if row[i] is not None:
                    for one in hist(k, col):
                        one.add_value(row[i])
    return out


async def summarise(session: AsyncSession, scope: Scope, names: Sequence[str], *,
                    group_by: str | None = None) -> dict[Any, dict[str, Distribution]]:
    """Each metric's count, sum, mean, median and 90th percentile over the period, per group (key None without
    ``group_by``), from the histograms of ``histograms``."""
    return {k: {name: _of(h) for name, h in per.items()}
            for k, per in (await histograms(session, scope, names, group_by=group_by)).items()}


def bucket_start(at: dt.datetime, interval: str, zone: ZoneInfo) -> dt.datetime:
    """The local start of the hour, day, week (Monday) or month ``at`` falls in."""
    local = at.astimezone(zone)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if interval == "week":
        day -= dt.timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone)


def buckets(scope: Scope, interval: str) -> list[dt.datetime]:
    """Every bucket's local start in the period, so empty ones show as zero or no value."""
    out: list[dt.datetime] = []
    t = bucket_start(scope.start, interval, scope.zone)
    while t.astimezone(dt.UTC) < scope.end:
        out.append(t)
        if interval == "hour":
            t = (t.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(scope.zone)
        else:
            day = t.date()
            if interval == "day":
                day += dt.timedelta(days=1)
            elif interval == "week":
                day += dt.timedelta(days=7)
            else:
                day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            t = dt.datetime.combine(day, dt.time(0), tzinfo=scope.zone)
    return out


async def series(session: AsyncSession, scope: Scope, metric: Metric, interval: str, *,
                 group_by: str | None = None) -> dict[Any, dict[dt.datetime, tuple[int, float]]]:
    """(count, sum) of the metric's values per bucket, per group."""
    if interval not in INTERVALS:
        raise ProblemError(422, "unknown_interval", f"interval must be one of: {', '.join(INTERVALS)}.")
    if interval == "hour" and scope.end - scope.start > MAX_HOURLY:
        raise ProblemError(422, "series_too_long", "An hourly series covers at most 2 years; choose a shorter "
                           "period or interval=day, week or month.")
    col = metric.column_for(scope.clock)
    if col is None:
        raise ProblemError(422, "metric_not_in_series", f"{metric.name} has no time series; it is in the agents "
                           "report. Series exist for: " + ", ".join(n for n, m in sorted(metrics().items())
                                                                    if m.column) + ".")
    out: dict[Any, dict[dt.datetime, tuple[int, float]]] = defaultdict(dict)

    def add(k: Any, at: dt.datetime, n: int, total: float) -> None:
        b = bucket_start(at, interval, scope.zone)
        n0, t0 = out[k].get(b, (0, 0.0))
        out[k][b] = (n0 + int(n), t0 + float(total or 0))

    uses_label = group_by == "label" or "label" in scope.filters
    if uses_label:
        at = _facts.c[ANCHOR_AT[metric.anchor]]
        stmt = select(at, _facts.c[col]).where(at >= scope.start, at < scope.end, _facts.c[col].is_not(None))
        stmt, key = _group_col(stmt, _facts, group_by)
        if key is not None:
            stmt = stmt.add_columns(key)
        for row in (await session.execute(_filtered(stmt, _facts, scope.filters))).all():
            add(row[-1] if key is not None else None, row[0], 1, row[1])
        return out
    h = _hourly.c
    rq: Select[Any] = (select(h.hour, func.sum(h.n), func.sum(h.total))
                         .where(h.metric == col, h.hour >= scope.start, h.hour < scope.end))
    for cut, value in scope.filters.items():
        rq = rq.where(h[cast(str, CUTS[cut])] == value)
    if group_by is not None:
        gcol = h[cast(str, CUTS[group_by])]
        rq = rq.add_columns(gcol).group_by(h.hour, gcol)
    else:
        rq = rq.group_by(h.hour)
    rows: list[Any] = list((await session.execute(rq)).all())
    for row in rows:
        add(row[3] if group_by is not None else None, row[0], row[1], row[2])
    return out


FACT_COLUMNS = [c.name for c in _facts.columns if not c.name.endswith("_hour") and c.name != "computed_at"]


def _conversations_stmt(scope: Scope, after: int, limit: int) -> Select[Any]:
    at = _facts.c.started_at
    stmt = (select(*[_facts.c[c] for c in FACT_COLUMNS])
            .where(at >= scope.start, at < scope.end, _facts.c.conversation_id > after)
            .order_by(_facts.c.conversation_id).limit(limit))
    return _filtered(stmt, _facts, scope.filters)


async def conversation_page(session: AsyncSession, scope: Scope, *, after: int, limit: int) -> list[dict[str, Any]]:
    """Facts of conversations started in the period, by id, with their labels."""
    rows = [dict(r._mapping) for r in (await session.execute(_conversations_stmt(scope, after, limit))).all()]
    ids = [r["conversation_id"] for r in rows]
    labels: dict[int, list[str]] = defaultdict(list)
    if ids:
        for cid, label in (await session.execute(
                select(ConversationLabel.conversation_id, ConversationLabel.label)
                .where(ConversationLabel.conversation_id.in_(ids)).order_by(ConversationLabel.label))).all():
            labels[cid].append(label)
    for r in rows:
        r["labels"] = labels[r["conversation_id"]]
    return rows


async def conversation_pages(read: Any, scope: Scope, *, chunk: int = 1000) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page of ``conversation_page``, each from its own short read session: memory stays flat."""
    after = 0
    while True:
        async with read() as s:
            rows = await conversation_page(s, scope, after=after, limit=chunk)
        if not rows:
            return
        yield rows
        after = rows[-1]["conversation_id"]


