"""/api/v1/reports: KPI definitions, the summary, time series, the agents report and conversation-level export.

Every report answers JSON, or CSV for ``Accept: text/csv`` (or ``format=csv``): the data behind each chart. Agents
see only their own figures (the agent cut is forced to themselves); supervisors and administrators see all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response, StreamingResponse

from kommutator.agents.models import Team, User
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.auth.principal import Principal
from kommutator.bot.models import BotFlow
from kommutator.clock import now
from kommutator.common.pagination import CursorQuery, decode_id_cursor, encode_id_cursor
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID
from kommutator.errors import ProblemError
from kommutator.ingest.models import Channel
from kommutator.queues.models import Queue
from kommutator.reports import pages, queries
from kommutator.reports.metrics import BUILTIN, metrics
from kommutator.reports.occupancy import occupancy
from kommutator.reports.schemas import (
    AgentReport,
    AgentRow,
    BotReport,
    ConversationFact,
    ConversationFactList,
    Counted,
    DistributionRead,
    Figure,
    Group,
    HeatCell,
    Heatmap,
    IntentCount,
    MetricList,
    MetricRead,
    Period,
    Point,
    RatingComment,
    RatingsReport,
    ScoreCount,
    Series,
    Summary,
    TimeSeries,
)

router = APIRouter(prefix="/reports", tags=["reports"], route_class=SafeRoute)

CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}},
             "description": "JSON, or CSV for Accept: text/csv (or format=csv)"}}
AGENT_METRICS = ("resolutions", "first_response_time", "response_time", "handle_time", "csat", "sla_compliance")
# Allowed values are listed in the OpenAPI document (enum) but checked here, so that a wrong one is a 422 with
# its own code (unknown_cut, unknown_metric, …) and a sentence naming what is allowed.
# (The enum goes inside the string branch: beside "anyOf" it broke Swagger UI, which then drew no operation after
# the first few.)
CutName = Annotated[str | None, Query(max_length=20, description="A cut: " + ", ".join(queries.CUTS),
                                      json_schema_extra={"anyOf": [{"type": "string", "maxLength": 20,
                                                                    "enum": list(queries.CUTS)},
                                                                   {"type": "null"}]})]
METRIC_NAMES = [m.name for m in BUILTIN]
SERIES_NAMES = [m.name for m in BUILTIN if m.column]  # occupancy is per agent, not per conversation


@dataclass
class Params:
    start: dt.date | None
    end: dt.date | None
    tz: str | None
    clock: str
    filters: dict[str, Any]
    csv: bool


def params(
    request: Request,
    start: dt.date | None = Query(None, description="First day of the period (in tz); default 29 days before end"),
    end: dt.date | None = Query(None, description="Last day of the period, inclusive (in tz); default today"),
    tz: str | None = Query(None, max_length=64, description="IANA time zone; default the workspace's"),
    clock: str = Query("wall", max_length=10, description="wall or business (durations in business hours)",
                       json_schema_extra={"enum": list(queries.CLOCKS)}),
    channel_type: str | None = Query(None, max_length=20),
    channel: int | None = Query(None, ge=1, le=MAX_ID),
    team: int | None = Query(None, ge=1, le=MAX_ID),
    queue: int | None = Query(None, ge=1, le=MAX_ID),
    agent: int | None = Query(None, ge=1, le=MAX_ID),
    label: str | None = Query(None, max_length=50),
    bot_flow: int | None = Query(None, ge=1, le=MAX_ID),
    format: str | None = Query(None, pattern="^(json|csv)$", description="csv: the same as Accept: text/csv"),
) -> Params:
    filters = {"channel_type": channel_type, "channel": channel, "team": team, "queue": queue, "agent": agent,
               "label": label, "bot_flow": bot_flow}
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    return Params(start, end, tz, clock, {k: v for k, v in filters.items() if v is not None}, wants_csv)


ParamsDep = Annotated[Params, Depends(params)]


def _scope(p: Params, principal: Principal, default_tz: str) -> queries.Scope:
    filters = dict(p.filters)
    if not principal.is_supervisor:
        if filters.get("agent", principal.user_id) != principal.user_id:
            raise ProblemError(403, "own_figures_only", "Agents see only their own figures; leave out agent= "
                               "or ask a supervisor.")
        filters["agent"] = principal.user_id
    return queries.make_scope(start=p.start, end=p.end, tz=p.tz or default_tz, filters=filters, clock=p.clock,
                              today=now())


def _period(scope: queries.Scope) -> Period:
    return Period(start=scope.start.astimezone(scope.zone), end=scope.end.astimezone(scope.zone),
                  tz=str(scope.zone.key))


def _figure(name: str, d: queries.Distribution, prev: queries.Distribution | None) -> Figure:
    m = queries.check_metric(name)
    value = queries.headline(m, d)
    pv = queries.headline(m, prev) if prev is not None else None
    return Figure(name=name, unit=m.unit, value=value,
                  distribution=DistributionRead(count=d.count, mean=d.mean, median=d.median, p90=d.p90),
                  previous_value=pv, change=(value - pv) if value is not None and pv is not None else None)


async def _names(s: AsyncSession, cut: str | None, keys: Iterable[Any]) -> dict[Any, str]:
    """Display names of a cut's values (agents, teams, queues, channels, flows)."""
    table = {"agent": User, "team": Team, "queue": Queue, "channel": Channel, "bot_flow": BotFlow}.get(cut or "")
    ids = [k for k in keys if isinstance(k, int)]
    if table is None or not ids:
        return {k: str(k) for k in keys if k is not None}
    return dict((await s.execute(select(table.id, table.name).where(table.id.in_(ids)))).all())  # type: ignore[attr-defined]


def _csv(header: list[str], rows: Iterable[list[Any]], filename: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/metrics", response_model=MetricList)
async def list_metrics(principal: CurrentPrincipal) -> MetricList:
    """Every metric with its unit and its definition in Russian and English."""
    return MetricList(items=[MetricRead(name=m.name, unit=m.unit, anchor=m.anchor, title=m.title,
                                        definition=m.definition, has_business_time=m.business_column is not None,
                                        in_series=m.column is not None, higher_is_better=m.higher_is_better)
                             for m in metrics().values()])


@router.get("/summary", response_model=Summary, responses=CSV)  # type: ignore[arg-type]
async def get_summary(
    rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep,
    metric: list[str] | None = Query(None, description="Repeat to choose metrics; default all",
                                     json_schema_extra={"items": {"type": "string", "enum": METRIC_NAMES}}),
    group_by: CutName = None,
) -> Summary | Response:
    """Headline figures of the period with their distributions and the previous period of the same length."""
    scope = _scope(p, principal, rt.settings.timezone)
    if group_by is not None:
        queries.check_cut(group_by)
    names = [queries.check_metric(n).name for n in (metric or [n for n, m in metrics().items() if m.column])]
    names = [n for n in names if queries.check_metric(n).column]
    async with rt.db.read() as s:
        now_all = (await queries.summarise(s, scope, names)).get(None, {})
        prev_all = (await queries.summarise(s, scope.previous(), names)).get(None, {})
        grouped = await queries.summarise(s, scope, names, group_by=group_by) if group_by else {}
        labels = await _names(s, group_by, grouped)
    empty = queries.Distribution()
    figures = [_figure(n, now_all.get(n, empty), prev_all.get(n, empty)) for n in names]
    groups = [Group(key=k, name=labels.get(k, "" if k is None else str(k)),
                    figures=[_figure(n, g.get(n, empty), None) for n in names])
              for k, g in sorted(grouped.items(), key=lambda kv: (kv[0] is None, str(kv[0])))]
    if p.csv:
        rows = [["", "", f.name, f.value, f.distribution.count, f.distribution.mean, f.distribution.median,
                 f.distribution.p90, f.previous_value] for f in figures]
        rows += [[g.key, g.name, f.name, f.value, f.distribution.count, f.distribution.mean, f.distribution.median,
                  f.distribution.p90, ""] for g in groups for f in g.figures]
        return _csv(["group", "group_name", "metric", "value", "count", "mean", "median", "p90", "previous_value"],
                    rows, "summary.csv")
    return Summary(period=_period(scope), previous=_period(scope.previous()), clock=scope.clock,
                   filters=scope.filters, group_by=group_by, figures=figures, groups=groups)


@router.get("/timeseries", response_model=TimeSeries, responses=CSV)  # type: ignore[arg-type]
async def get_timeseries(
    rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep,
    metric: str = Query(..., max_length=40, description="A metric name (GET /reports/metrics)",
                        json_schema_extra={"enum": SERIES_NAMES}),
    interval: str = Query("day", max_length=10, description="hour, day, week or month",
                          json_schema_extra={"enum": list(queries.INTERVALS)}),
    group_by: CutName = None,
) -> TimeSeries | Response:
    """One metric per hour, day, week or month of the period (local to tz), optionally one series per group."""
    scope = _scope(p, principal, rt.settings.timezone)
    m = queries.check_metric(metric)
    if group_by is not None:
        queries.check_cut(group_by)
    async with rt.db.read() as s:
        data = await queries.series(s, scope, m, interval, group_by=group_by)
        labels = await _names(s, group_by, data)
    starts = queries.buckets(scope, interval)
    out = []
    for key in sorted(data, key=lambda k: (k is None, str(k))) if data else ([None] if group_by is None else []):
        points = []
        for b in starts:
            n, total = data.get(key, {}).get(b, (0, 0.0))
            value = total if m.unit == "count" else (total / n * m.scale if n else None)
            points.append(Point(start=b, value=value, count=n))
        out.append(Series(key=key, name=labels.get(key, "") if key is not None else "", points=points))
    if p.csv:
        return _csv(["series", "series_name", "start", "value", "count"],
                    ([s_.key, s_.name, pt.start.isoformat(), pt.value, pt.count] for s_ in out for pt in s_.points),
                    f"{m.name}-{interval}.csv")
    return TimeSeries(metric=m.name, unit=m.unit, interval=interval, clock=scope.clock, period=_period(scope),
                      series=out)


@router.get("/agents", response_model=AgentReport, responses=CSV)  # type: ignore[arg-type]
async def get_agents(rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep) -> AgentReport | Response:
    """Per agent: handled, first response, response and handle time, CSAT, SLA compliance, occupancy."""
    scope = _scope(p, principal, rt.settings.timezone)
    async with rt.db.read() as s:
        grouped = await queries.summarise(s, scope, AGENT_METRICS, group_by="agent")
        busy = await occupancy(s, scope.start, scope.end,
                               agent_id=scope.filters.get("agent") if "agent" in scope.filters else None)
        keys = [k for k in grouped if k is not None] + [k for k in busy if k not in grouped]
        labels = await _names(s, "agent", keys)
    empty = queries.Distribution()
    items = [AgentRow(agent_id=k, name=labels.get(k, str(k)),
                      figures=[_figure(n, grouped.get(k, {}).get(n, empty), None) for n in AGENT_METRICS],
                      occupancy=busy.get(k)) for k in sorted(keys, key=lambda k: labels.get(k, str(k)))]
    if p.csv:
        header = ["agent_id", "agent", *AGENT_METRICS, "occupancy"]
        return _csv(header, ([a.agent_id, a.name, *[f.value for f in a.figures], a.occupancy] for a in items),
                    "agents.csv")
    return AgentReport(period=_period(scope), clock=scope.clock, items=items)


@router.get("/heatmap", response_model=Heatmap, responses=CSV)  # type: ignore[arg-type]
async def get_heatmap(
    rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep,
    metric: str = Query("conversations", max_length=40, description="A metric name (GET /reports/metrics)",
                        json_schema_extra={"enum": SERIES_NAMES}),
) -> Heatmap | Response:
    """One metric by hour of the week (local to tz) over the period: when the traffic comes."""
    scope = _scope(p, principal, rt.settings.timezone)
    m = queries.check_metric(metric)
    async with rt.db.read() as s:
        grid = await pages.heatmap(s, scope, m)
    cells = [HeatCell(weekday=d, hour=hh, count=n,
                      value=total if m.unit == "count" else (total / n * m.scale if n else None))
             for d, row in enumerate(grid) for hh, (n, total) in enumerate(row)]
    if p.csv:
        return _csv(["weekday", "hour", "value", "count"], ([c.weekday, c.hour, c.value, c.count] for c in cells),
                    f"{m.name}-hour-of-week.csv")
    return Heatmap(metric=m.name, unit=m.unit, period=_period(scope), cells=cells)


@router.get("/bot", response_model=BotReport, responses=CSV)  # type: ignore[arg-type]
async def get_bot(rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep) -> BotReport | Response:
    """Why the bot handed conversations to people, the menu choices made before, and the intents the bot
    recognised most often with how those conversations ended (containment per flow is the summary's
    bot_containment with group_by=bot_flow)."""
    scope = _scope(p, principal, rt.settings.timezone)
    async with rt.db.read() as s:
        found = await pages.bot_handoffs(s, scope)
        heard = await pages.top_intents(s, scope)
    reasons = [Counted(name=k, count=n) for k, n in found["reasons"]]
    choices = [Counted(name=k, count=n) for k, n in found["choices"]]
    intents = [IntentCount(name=k, count=n, contained=c, handed_off=h) for k, n, c, h in heard]
    if p.csv:
        return _csv(["kind", "name", "count", "contained", "handed_off"],
                    [*(["handoff_reason", c.name, c.count, "", ""] for c in reasons),
                     *(["menu_choice", c.name, c.count, "", ""] for c in choices),
                     *(["intent", i.name, i.count, i.contained, i.handed_off] for i in intents)], "bot.csv")
    return BotReport(period=_period(scope), handoff_reasons=reasons, menu_choices=choices, top_intents=intents)


@router.get("/ratings", response_model=RatingsReport, responses=CSV)  # type: ignore[arg-type]
async def get_ratings(rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep) -> RatingsReport | Response:
    """How many ratings of each score arrived in the period (CSAT 1–5, NPS 0–10) and the newest comments, each
    with its conversation."""
    scope = _scope(p, principal, rt.settings.timezone)
    async with rt.db.read() as s:
        counts = await pages.rating_counts(s, scope)
        comments = await pages.rating_comments(s, scope)
        names = await _names(s, "agent", {c["agent_id"] for c in comments if c["agent_id"] is not None})
    dist = [ScoreCount(scale=scale, score=score, count=n) for scale, per in counts.items() for score, n in per.items()]
    items = [RatingComment(**c, agent=names.get(c["agent_id"], "") if c["agent_id"] is not None else "")
             for c in comments]
    if p.csv:
        return _csv(["scale", "score", "count"], ([d.scale, d.score, d.count] for d in dist), "ratings.csv")
    return RatingsReport(period=_period(scope), distribution=dist, comments=items)


CSV_COLUMNS = [*queries.FACT_COLUMNS, "labels"]


def _cell(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, list):
        return ";".join(v)
    return "" if v is None else v


@router.get("/conversations", response_model=ConversationFactList, responses=CSV)  # type: ignore[arg-type]
async def list_conversations(
    rt: RuntimeDep, principal: CurrentPrincipal, p: ParamsDep, cursor: CursorQuery = None,
    limit: int = Query(100, ge=1, le=1000),
) -> ConversationFactList | Response:
    """Every conversation started in the period with its KPI values and cuts; CSV streams all of them."""
    scope = _scope(p, principal, rt.settings.timezone)
    if p.csv:
        async def body() -> AsyncIterator[str]:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(CSV_COLUMNS)
            async for rows in queries.conversation_pages(rt.db.read, scope):
                w.writerows([_cell(r[c]) for c in CSV_COLUMNS] for r in rows)
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
            if buf.getvalue():
                yield buf.getvalue()

        return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="conversations.csv"'})
    after = decode_id_cursor(cursor) if cursor else 0
    async with rt.db.read() as s:
        rows = await queries.conversation_page(s, scope, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return ConversationFactList(items=[ConversationFact(**r) for r in rows],
                                next_cursor=encode_id_cursor(rows[-1]["conversation_id"]) if more else None)
