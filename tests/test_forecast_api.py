"""The staffing forecast over HTTP: a supervisor reads a queue's week (arrivals, handle time, agents by Erlang C),
changes the what-if parameters, and checks past weeks against what arrived; agents are refused, bad
parameters answered with a sentence. History is written as the product writes it: conversations coming in
through the API channel's webhook, routed to an agent, answered and resolved over the REST API."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Table, insert

from kommutator.conversations.models import Conversation, Transition
from kommutator.db import Tx
from kommutator.forecast import erlang
from kommutator.runtime import Runtime

from .conftest import Actor, Clock, Factory, post_inbound

MSK = ZoneInfo("Europe/Moscow")
# The test clock starts on Saturday 2031-03-01 09:00 UTC (12:00 in Moscow).


async def _queue(client: httpx.AsyncClient, admin: Actor, **extra: Any) -> dict[str, Any]:
    body = {"name": "Support", "accept_timeout_seconds": 0, "wait_notice_seconds": 0, "sl_target_percent": 80,
            "sl_target_seconds": 30, "business_hours": {"timezone": "Europe/Moscow", "days": {
                d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}, **extra}
    r = await client.post("/api/v1/queues", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _history(rt: Runtime, queue_id: int, contact_id: int, arrivals: list[dt.datetime], handle: int) -> None:
    """Conversations that entered the queue at each instant, assigned 20 s later, resolved ``handle`` s after."""
    convs, trans = cast(Table, Conversation.__table__), cast(Table, Transition.__table__)

    async def job(tx: Tx) -> None:
        for at in arrivals:
            done = at + dt.timedelta(seconds=20 + handle)
            cid = (await tx.session.execute(insert(convs).returning(convs.c.id), {
                "contact_id": contact_id, "status": "resolved", "queue_id": queue_id, "created_at": at,
                "updated_at": done, "last_message_at": done, "queued_at": at, "resolved_at": done,
                "assigned_at": at + dt.timedelta(seconds=20), "routing_notices": {}})).scalar_one()
            await tx.session.execute(insert(trans), [
                {"conversation_id": cid, "from_status": None, "to_status": "bot", "at": at - dt.timedelta(minutes=1),
                 "reason": "new"},
                {"conversation_id": cid, "from_status": "bot", "to_status": "queued", "at": at, "reason": "handed off"},
                {"conversation_id": cid, "from_status": "queued", "to_status": "assigned",
                 "at": at + dt.timedelta(seconds=20), "reason": "routed"},
                {"conversation_id": cid, "from_status": "assigned", "to_status": "resolved", "at": done,
                 "reason": "set by agent"}])

    await rt.db.write(job)


def _msk(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), tzinfo=MSK).astimezone(dt.UTC)


async def _contact(client: httpx.AsyncClient, admin: Actor) -> int:
    r = await client.post("/api/v1/contacts", json={"name": "History"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


@pytest.fixture
async def steady(client: httpx.AsyncClient, admin: Actor, runtime: Runtime, clock: Clock) -> dict[str, Any]:
    """Six weeks in which every Monday 10:00–10:30 Moscow time brings 60 conversations handled in 600 s,
    and every Wednesday 15:00–15:30 brings 3."""
    queue = await _queue(client, admin)
    contact = await _contact(client, admin)
    monday = dt.date(2031, 1, 20)
    arrivals = []
    for week in range(6):
        day = monday + dt.timedelta(days=7 * week)
        arrivals += [_msk(day, 10, k % 30) for k in range(60)]
        arrivals += [_msk(day + dt.timedelta(days=2), 15, 10 + k) for k in range(3)]
    await _history(runtime, queue["id"], contact, arrivals, handle=600)
    return queue


async def test_a_supervisor_sees_the_week_and_the_agents_it_needs(client: httpx.AsyncClient, factory: Factory,
                                                                 steady: dict[str, Any]) -> None:
    olga = await factory.user("supervisor", name="Olga")
    r = await client.get(f"/api/v1/forecast/queues/{steady['id']}", headers=olga.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["start"], body["end"], body["timezone"]) == ("2031-03-03", "2031-03-09", "Europe/Moscow")
    assert len(body["slots"]) == 7 * 48 and len(body["days"]) == 7
    assert body["history"]["weekly_totals"] == [63] * 5  # whole weeks before the cutoff (the 6th began a Monday)
    assert body["history"]["trend_factor"] == 1.0
    assert body["params"] == {"target_percent": 80.0, "target_seconds": 30, "arrivals_multiplier": 1.0,
                              "aht_seconds": 600.0, "aht_source": "history", "shrinkage": 0.3, "concurrency": 1}
    busy = {(s["date"], s["time"]): s for s in body["slots"] if s["arrivals"]}
    assert set(busy) == {("2031-03-03", "10:00"), ("2031-03-05", "15:00")}
    peak = busy[("2031-03-03", "10:00")]
    assert peak["start"] == "2031-03-03T07:00:00Z"
    expected = erlang.staff(arrivals=60, interval_seconds=1800, aht=600, target_seconds=30, target_fraction=0.8)
    assert peak["arrivals"] == 60.0 and peak["traffic_erlangs"] == 20.0 and peak["agents"] == expected.servers
    assert peak["agents_scheduled"] == math.ceil(expected.servers / 0.7)
    assert peak["occupancy"] == round(100 * 20 / expected.servers, 1)
    assert peak["service_level"] >= 80
    assert body["totals"]["arrivals"] == 63.0 and body["totals"]["peak_agents"] == expected.servers
    assert body["days"][0]["agent_hours"] == expected.servers * 0.5 + 0.0

    # What-if: twice the arrivals, a tighter target, a shorter handle time, two chats at once.
    r = await client.get(f"/api/v1/forecast/queues/{steady['id']}", headers=olga.headers, params={
        "arrivals_multiplier": 2, "target_percent": 90, "target_seconds": 20, "aht_seconds": 300,
        "concurrency": 2, "shrinkage": 0})
    assert r.status_code == 200, r.text
    what_if = r.json()
    peak = next(s for s in what_if["slots"] if s["date"] == "2031-03-03" and s["time"] == "10:00")
    servers = erlang.staff(arrivals=120, interval_seconds=1800, aht=300, target_seconds=20,
                           target_fraction=0.9).servers
    assert peak["arrivals"] == 120.0 and peak["agents"] == math.ceil(servers / 2) == peak["agents_scheduled"]
    assert what_if["params"]["aht_source"] == "override"


async def test_past_weeks_forecast_against_actual(client: httpx.AsyncClient, factory: Factory, runtime: Runtime,
                                                  steady: dict[str, Any]) -> None:
    # The last whole week (Feb 17 – 23; today is Saturday Mar 1) gets a surprise: 30 more on Tuesday 09:00.
    await _history(runtime, steady["id"], await _contact(client, (await factory.user("admin"))),
                   [_msk(dt.date(2031, 2, 18), 9, k) for k in range(30)], handle=600)
    olga = await factory.user("supervisor", name="Olga")
    r = await client.get(f"/api/v1/forecast/queues/{steady['id']}/accuracy", params={"weeks": 3},
                         headers=olga.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [w["start"] for w in body["weeks"]] == ["2031-02-03", "2031-02-10", "2031-02-17"]
    steady_week, surprise = body["weeks"][1], body["weeks"][2]
    assert (steady_week["forecast_total"], steady_week["actual_total"], steady_week["wape"]) == (63.0, 63, 0.0)
    assert (surprise["forecast_total"], surprise["actual_total"]) == (63.0, 93)
    assert surprise["wape"] == round(100 * 30 / 93, 1) and surprise["mape"] == round(100 * 1 / 3, 1)
    tuesday = next(d for d in surprise["days"] if d["date"] == "2031-02-18")
    assert tuesday == {"date": "2031-02-18", "forecast": 0.0, "actual": 30}
    assert len(surprise["slots"]) == 336


async def test_agents_are_refused_and_bad_parameters_explained(client: httpx.AsyncClient, factory: Factory,
                                                               steady: dict[str, Any]) -> None:
    anna = await factory.user("agent", name="Anna")
    for path in (f"/api/v1/forecast/queues/{steady['id']}", f"/api/v1/forecast/queues/{steady['id']}/accuracy"):
        r = await client.get(path, headers=anna.headers)
        assert r.status_code == 403 and r.json()["code"] == "supervisor_required", r.text
        assert "supervisor" in r.json()["detail"]
    olga = await factory.user("supervisor", name="Olga")
    base = f"/api/v1/forecast/queues/{steady['id']}"
    for params, code in [({"tz": "Mars/Olympus"}, "invalid_time_zone"), ({"start": "2035-01-01"}, "start_out_of_range"),
                         ({"target_percent": 100}, "validation_failed"), ({"shrinkage": 1}, "validation_failed"),
                         ({"arrivals_multiplier": "lots"}, "validation_failed"), ({"weeks": 0}, "validation_failed")]:
        r = await client.get(base, params=params, headers=olga.headers)
        assert r.status_code == 422 and r.json()["code"] == code, (params, r.text)
        assert next(iter(params)) in r.json()["detail"], r.text  # the sentence names what was wrong
    r = await client.get("/api/v1/forecast/queues/999999", headers=olga.headers)
    assert r.status_code == 404 and r.json()["code"] == "queue_not_found"


async def test_the_products_own_history_feeds_the_forecast(client: httpx.AsyncClient, factory: Factory,
                                                           admin: Actor, clock: Clock) -> None:
    """Conversations that really came in, were assigned and resolved: their arrival and handle time count."""
    queue = await _queue(client, admin, name="Web")
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "Site", "queue_id": queue["id"]},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    channel = r.json()
    olga = await factory.user("supervisor", name="Olga")
    clock.t = dt.datetime(2031, 2, 24, 7, 5, tzinfo=dt.UTC)  # Monday 10:05 in Moscow, a week before
    for n in range(3):
        r = await post_inbound(client, channel, msg_id=f"m{n}", contact=f"c{n}", text="hello")
        assert r.status_code in (200, 202), r.text
    r = await client.get("/api/v1/conversations", params={"status": "queued"}, headers=admin.headers)
    ids = [c["id"] for c in r.json()["items"]]
    assert len(ids) == 3
    for cid in ids:
        clock.tick(30)
        r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": olga.id},
                              headers=admin.headers)
        assert r.status_code == 200, r.text
    clock.tick(420)
    for cid in ids:
        r = await client.post(f"/api/v1/conversations/{cid}/status", json={"status": "resolved"},
                              headers=olga.headers)
        assert r.status_code == 200, r.text
    clock.t = dt.datetime(2031, 3, 1, 9, 0, tzinfo=dt.UTC)
    r = await client.get(f"/api/v1/forecast/queues/{queue['id']}", headers=olga.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    monday = next(s for s in body["slots"] if s["date"] == "2031-03-03" and s["time"] == "10:00")
    assert monday["arrivals"] == 3.0
    handled = body["history"]
    # Assigned 30, 60, 90 s after arrival; all resolved 420 s after the last assignment.
    assert handled["handled_conversations"] == 3
    assert handled["average_handle_seconds"] == pytest.approx((480 + 450 + 420) / 3, abs=0.1)
