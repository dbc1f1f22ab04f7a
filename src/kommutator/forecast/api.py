"""/api/v1/forecast: the staffing forecast of a queue, with what-ifs, and its accuracy in past weeks."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.clock import now
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.errors import ProblemError, not_found
from kommutator.forecast import plan
from kommutator.forecast.schemas import ForecastAccuracy, QueueForecast
from kommutator.queues.models import Queue
from kommutator.runtime import Runtime

router = APIRouter(prefix="/forecast", tags=["forecast"], route_class=SafeRoute)

MAX_DAYS_AHEAD = 28
MAX_DAYS_BACK = 366

Tz = Annotated[str | None, Query(max_length=64, description="IANA time zone the half hours align to; default the "
                                 "queue's business-hours zone, else UTC")]
Weeks = Annotated[int, Query(ge=1, le=12, description="Past weeks of the same half hour averaged")]


def _zone(name: str | None, queue: Queue) -> ZoneInfo:
    try:
        return plan.queue_zone(queue, name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProblemError(422, "invalid_time_zone", f"tz: {name!r} is not a time zone; use an IANA name such as "
                           "'Europe/Moscow' or 'UTC'.") from exc


async def _queue(rt: Runtime, queue_id: int) -> Queue:
    async with rt.db.read() as s:
        queue = await s.get(Queue, queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    return queue


@router.get("/queues/{queue_id}", response_model=QueueForecast)
async def queue_forecast(
    rt: RuntimeDep, principal: CurrentPrincipal, queue_id: Id,
    start: Annotated[dt.date | None, Query(description="First local day of the week forecast; default next Monday")]
    = None,
    tz: Tz = None,
    weeks: Weeks = 6,
    target_percent: Annotated[float | None, Query(ge=1, le=99.9, description="What-if: share to answer within "
                                                  "the target time; default the queue's")] = None,
    target_seconds: Annotated[int | None, Query(ge=0, le=86400, description="What-if: the target time; default "
                                                "the queue's")] = None,
    arrivals_multiplier: Annotated[float, Query(ge=0, le=10, description="What-if: arrivals × this")] = 1.0,
    aht_seconds: Annotated[float | None, Query(ge=1, le=86400, description="What-if: handle time instead of the "
                                               "history's average")] = None,
    shrinkage: Annotated[float, Query(ge=0, le=0.9, description="Share of paid time agents are unavailable")] = 0.3,
    concurrency: Annotated[int, Query(ge=1, le=20, description="Conversations an agent handles at once")] = 1,
) -> QueueForecast:
    """Arrivals per half hour of a week, the handle time, and the agents the service-level target needs (Erlang C),
    with the occupancy that implies; query parameters change the target, arrivals or handle time (what-if).
    Supervisors and administrators."""
    principal.require_supervisor()
    queue = await _queue(rt, queue_id)
    zone = _zone(tz, queue)
    at = now()
    today = at.astimezone(zone).date()
    first = start if start is not None else plan.monday(today) + dt.timedelta(days=7)
    if not today - dt.timedelta(days=MAX_DAYS_BACK) <= first <= today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise ProblemError(422, "start_out_of_range", f"start: must be between {MAX_DAYS_BACK} days before and "
                           f"{MAX_DAYS_AHEAD} days after today ({today.isoformat()}); got {first.isoformat()}.")
    params = plan.Params(
        weeks=weeks, arrivals_multiplier=arrivals_multiplier, aht_seconds=aht_seconds, shrinkage=shrinkage,
        concurrency=concurrency,
        target_percent=target_percent if target_percent is not None else float(min(99.9, queue.sl_target_percent)),
        target_seconds=target_seconds if target_seconds is not None else queue.sl_target_seconds)
    async with rt.db.read() as s:
        try:
            result = await plan.week_forecast(s, queue, tz=zone, start=first, now=at, params=params)
        except ValueError as exc:  # more agents than erlang.MAX_SERVERS: a what-if beyond any real queue
            raise ProblemError(422, "staffing_out_of_range", f"{exc}; lower arrivals_multiplier or aht_seconds.") \
                from exc
    return QueueForecast.model_validate(result)


@router.get("/queues/{queue_id}/accuracy", response_model=ForecastAccuracy)
async def queue_forecast_accuracy(
    rt: RuntimeDep, principal: CurrentPrincipal, queue_id: Id, tz: Tz = None,
    weeks: Annotated[int, Query(ge=1, le=12, description="How many past whole weeks to check")] = 4,
    history_weeks: Weeks = 6,
) -> ForecastAccuracy:
    """Forecast against actual arrivals for past whole weeks (Monday to Sunday), each forecast only from the
    history before that week, with the error (WAPE, MAPE). Supervisors and administrators."""
    principal.require_supervisor()
    queue = await _queue(rt, queue_id)
    zone = _zone(tz, queue)
    async with rt.db.read() as s:
        result = await plan.accuracy(s, queue, tz=zone, weeks_back=weeks, now=now(),
                                     params=plan.Params(weeks=history_weeks))
    return ForecastAccuracy.model_validate(result)
