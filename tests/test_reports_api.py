"""The reports API the way a supervisor and an agent meet it: conversations handled through the real API, the
reporting worker keeping facts current, figures, series, the agents table, CSV export and role boundaries."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from kommutator.reports.actions import rebuild
from kommutator.reports.models import ReportDaily, ReportFact, ReportHourly, ReportIntent
from kommutator.reports.worker import reports_worker_of
from kommutator.runtime import Runtime

from .conftest import Actor, Clock, Factory
from .quality_support import customer_writes, reply, set_status, settle

R = "/api/v1/reports"
DAY = "2031-03-01"  # the clock fixture starts at 2031-03-01 09:00 UTC


@pytest.fixture
async def world(client: httpx.AsyncClient, factory: Factory, admin: Actor) -> dict[str, Any]:
    team = await factory.team("Support")
    anna = await factory.user("agent", teams=[team], name="Anna")
    boris = await factory.user("agent", teams=[team], name="Boris")
    sup = await factory.user("supervisor", teams=[team], name="Sergey")
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return {"team": team, "anna": anna, "boris": boris, "sup": sup, "admin": admin, "channel": r.json()}


async def assign(client: httpx.AsyncClient, admin: Actor, cid: int, agent: Actor) -> None:
    r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": agent.id},
                          headers=admin.headers)
    assert r.status_code == 200, r.text


async def story(client: httpx.AsyncClient, clock: Clock, w: dict[str, Any]) -> tuple[int, int]:
    """Anna answers the first customer in 90 s (assigned after 60 s); Boris the second in 30 s; both resolved."""
    c1 = await customer_writes(client, w["channel"], "alice", "where is my order?")
    clock.tick(60)
    await assign(client, w["admin"], c1, w["anna"])
    clock.tick(30)
    await reply(client, w["anna"], c1)
    clock.tick(510)
    await set_status(client, w["anna"], c1, "resolved")
    clock.tick(60)
    c2 = await customer_writes(client, w["channel"], "bob", "hi")
    await assign(client, w["admin"], c2, w["boris"])
    clock.tick(30)
    await reply(client, w["boris"], c2)
    clock.tick(270)
    await set_status(client, w["boris"], c2, "resolved")
    return c1, c2


def figures(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in body["figures"]}


async def get(client: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(f"{R}/{path}", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_summary_figures_distributions_and_previous_period(client: httpx.AsyncClient, runtime: Runtime,
                                                                 clock: Clock, world: dict[str, Any]) -> None:
    await story(client, clock, world)
    assert await reports_worker_of(runtime).drain() >= 2
    body = await get(client, world["sup"], "summary", start=DAY, end=DAY, tz="UTC")
    f = figures(body)
    assert f["conversations"]["value"] == 2
    assert f["resolutions"]["value"] == 2
    frt = f["first_response_time"]["distribution"]
    assert (frt["count"], frt["mean"], frt["median"]) == (2, 60.0, 60.0)  # 90 s and 30 s
    assert f["handle_time"]["distribution"]["mean"] == (540 + 300) / 2
    assert f["abandonment"]["value"] == 0
    assert f["conversations"]["previous_value"] == 0 and f["conversations"]["change"] == 2
    assert body["period"]["start"].startswith("2031-03-01T00:00:00")

    grouped = await get(client, world["sup"], "summary", start=DAY, end=DAY, group_by="agent")
    by_name = {g["name"]: figures(g) for g in grouped["groups"]}
    assert by_name["Anna"]["first_response_time"]["value"] == 90
    assert by_name["Boris"]["first_response_time"]["value"] == 30


async def test_grouped_figures_are_distributions_alike_from_rollups_and_facts(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, world: dict[str, Any]) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    grouped = await get(client, world["sup"], "summary", start=DAY, end=DAY, tz="UTC", group_by="agent",
                        metric=["first_response_time", "handle_time"])
    by_name = {g["name"]: figures(g) for g in grouped["groups"]}
    anna = by_name["Anna"]["first_response_time"]["distribution"]
    assert (anna["count"], anna["mean"], anna["median"], anna["p90"]) == (1, 90.0, 90.0, 90.0)
    whole = figures(grouped)["first_response_time"]["distribution"]
    assert (whole["median"], whole["p90"]) == (60.0, 90.0)
    assert figures(grouped)["handle_time"]["distribution"]["p90"] == 540
    # India's half-hour offset does not fit the hourly rollups: the same figures then come from the facts.
    india = await get(client, world["sup"], "summary", start=DAY, end=DAY, tz="Asia/Kolkata", group_by="agent",
                      metric=["first_response_time", "handle_time"])
    assert [g["figures"] for g in india["groups"]] == [g["figures"] for g in grouped["groups"]]
    assert [f["distribution"] for f in india["figures"]] == [f["distribution"] for f in grouped["figures"]]


async def test_agents_see_only_their_own_figures(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                 world: dict[str, Any]) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    anna, boris = world["anna"], world["boris"]
    own = figures(await get(client, anna, "summary", start=DAY, end=DAY))
    assert own["conversations"]["value"] == 1 and own["first_response_time"]["value"] == 90
    r = await client.get(f"{R}/summary", params={"agent": boris.id}, headers=anna.headers)
    assert r.status_code == 403 and r.json()["code"] == "own_figures_only"
    rows = (await get(client, anna, "agents", start=DAY, end=DAY))["items"]
    assert [row["name"] for row in rows] == ["Anna"]
    everyone = (await get(client, world["sup"], "agents", start=DAY, end=DAY))["items"]
    assert sorted(row["name"] for row in everyone) == ["Anna", "Boris"]
    convs = (await get(client, anna, "conversations", start=DAY, end=DAY))["items"]
    assert [c["agent_id"] for c in convs] == [anna.id]
    r = await client.get(f"{R}/summary", headers={})
    assert r.status_code == 401


async def test_timeseries_in_the_workspace_zone_and_a_late_rating(client: httpx.AsyncClient, runtime: Runtime,
                                                                  clock: Clock, world: dict[str, Any]) -> None:
    r = await client.put("/api/v1/quality/csat/default", json={"scale": "csat", "ask_comment": False},
                         headers=world["sup"].headers)
    assert r.status_code == 200, r.text
    c1, _ = await story(client, clock, world)
    await settle(runtime)  # the rating question goes out
    clock.tick(3 * 86400)  # three days later the customer answers
    await customer_writes(client, world["channel"], "alice", "5")
    await settle(runtime)
    await reports_worker_of(runtime).drain()
    moscow = await get(client, world["sup"], "timeseries", metric="conversations", interval="hour",
                       start=DAY, end=DAY, tz="Europe/Moscow")
    points = {p["start"]: p["value"] for p in moscow["series"][0]["points"]}
    assert len(points) == 24
    assert points["2031-03-01T12:00:00+03:00"] == 2  # 09:00 UTC is noon in Moscow
    csat = await get(client, world["sup"], "timeseries", metric="csat", interval="day", start=DAY, end="2031-03-05",
                     tz="UTC")
    by_day = {p["start"][:10]: (p["value"], p["count"]) for p in csat["series"][0]["points"]}
    assert by_day["2031-03-01"] == (None, 0)  # rated three days after the conversation: not here…
    assert by_day["2031-03-04"] == (100.0, 1)  # …but on the day of the rating
    facts = (await get(client, world["sup"], "conversations", start=DAY, end=DAY))["items"]
    assert {f["conversation_id"]: f["csat_score"] for f in facts}[c1] == 5

    # CSV of the chart's data is the same series
    r = await client.get(f"{R}/timeseries", params={"metric": "conversations", "interval": "hour", "start": DAY,
                                                   "end": DAY, "tz": "Europe/Moscow"},
                         headers={**world["sup"].headers, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["start"]: float(row["value"]) for row in rows} == {k: float(v) for k, v in points.items()}


@pytest.mark.parametrize(("params", "code", "names"), [
    ({"metric": "speed"}, "unknown_metric", "first_response_time"),
    ({"metric": "conversations", "group_by": "colour"}, "unknown_cut", "bot_flow"),
    ({"metric": "conversations", "tz": "Mars/Olympus"}, "invalid_time_zone", "Europe/Moscow"),
    ({"metric": "conversations", "interval": "hour", "start": "2029-01-01", "end": "2031-03-01"}, "series_too_long",
     "interval=day"),
    ({"metric": "conversations", "interval": "fortnight"}, "unknown_interval", "week"),
    ({"metric": "conversations", "start": "2031-03-02", "end": "2031-03-01"}, "invalid_period", "swap"),
])
async def test_bad_requests_name_what_is_allowed(client: httpx.AsyncClient, world: dict[str, Any],
                                                 params: dict[str, str], code: str, names: str) -> None:
    r = await client.get(f"{R}/timeseries", params=params, headers=world["sup"].headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code and names in r.json()["detail"]


async def test_conversation_export_csv_round_trip(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                  world: dict[str, Any]) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    c1 = (await get(client, world["sup"], "conversations", start=DAY, end=DAY))["items"][0]["conversation_id"]
    r = await client.put(f"/api/v1/conversations/{c1}/labels", json={"labels": ["vip"]}, headers=world["sup"].headers)
    assert r.status_code == 200, r.text
    await reports_worker_of(runtime).drain()
    vip = figures(await get(client, world["sup"], "summary", start=DAY, end=DAY, label="vip"))
    assert vip["conversations"]["value"] == 1
    by_label = await get(client, world["sup"], "timeseries", metric="conversations", start=DAY, end=DAY,
                         group_by="label")
    assert [(s["key"], sum(p["value"] for p in s["points"])) for s in by_label["series"]] == [("vip", 1)]
    page1 = await get(client, world["sup"], "conversations", start=DAY, end=DAY, limit=1)
    assert len(page1["items"]) == 1 and page1["next_cursor"]
    page2 = await get(client, world["sup"], "conversations", start=DAY, end=DAY, limit=1, cursor=page1["next_cursor"])
    assert page2["next_cursor"] is None
    items = page1["items"] + page2["items"]
    r = await client.get(f"{R}/conversations", params={"start": DAY, "end": DAY},
                         headers={**world["sup"].headers, "Accept": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == len(items) == 2
    for row, item in zip(rows, items, strict=True):
        for key, value in item.items():
            if isinstance(value, list):
                assert row[key] == ";".join(value)
            elif value is None:
                assert row[key] == ""
            elif isinstance(value, float):
                assert float(row[key]) == value
            elif isinstance(value, int):
                assert int(row[key]) == value
            elif key.endswith("_at"):
                assert dt.datetime.fromisoformat(row[key]) == dt.datetime.fromisoformat(value)
            else:
                assert row[key] == value


async def test_rebuild_equals_the_live_facts_and_is_idempotent(client: httpx.AsyncClient, runtime: Runtime,
                                                               clock: Clock, world: dict[str, Any]) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    live = await snapshot(runtime)
    assert live[0] and live[1]
    assert await rebuild(runtime.db) == 2
    assert await snapshot(runtime) == live
    await rebuild(runtime.db)
    assert await snapshot(runtime) == live


async def test_the_rebuild_command(client: httpx.AsyncClient, runtime: Runtime, clock: Clock, world: dict[str, Any],
                                   tmp_path: Path) -> None:
    await story(client, clock, world)
    await reports_worker_of(runtime).drain()
    live = await snapshot(runtime)
    await runtime.db.write(lambda tx: tx.conn.execute(delete(ReportHourly)))  # the command must put them back
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMUTATOR_")}
    env.update(KOMMUTATOR_DATABASE_URL=runtime.settings.database_url, KOMMUTATOR_DATA_DIR=str(tmp_path / "d"),
               KOMMUTATOR_SECRET_KEY="x" * 40)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kommutator.cli", "reports", "rebuild"],
                                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "of 2 conversations" in done.stdout
    assert await snapshot(runtime) == live


async def snapshot(rt: Runtime) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Facts (without computed_at) and rollups (without ids), comparable between a live run and a rebuild."""
    async with rt.db.read() as s:
        facts = [tuple(round(v, 6) if isinstance(v, float) else v for k, v in sorted(f.__dict__.items())
                       if not k.startswith("_") and k != "computed_at")
                 for f in (await s.execute(select(ReportFact).order_by(ReportFact.conversation_id))).scalars()]
        cols = [c for c in ReportHourly.__table__.columns if c.name != "id"]
        rolls = sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                        for row in (await s.execute(select(*cols))).all()), key=repr)
        days = [c for c in ReportDaily.__table__.columns if c.name != "id"]
        rolls += sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                         for row in (await s.execute(select(*days))).all()), key=repr)
        heard = [c for c in ReportIntent.__table__.columns if c.name != "id"]
        rolls += sorted((tuple(row) for row in (await s.execute(select(*heard))).all()), key=repr)
    return facts, rolls


async def test_occupancy_is_busy_time_over_online_time(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                        world: dict[str, Any]) -> None:
    anna = world["anna"]
    worker = reports_worker_of(runtime)

    async def presence(value: str) -> None:
        r = await client.patch(f"/api/v1/users/{anna.id}", json={"presence": value}, headers=anna.headers)
        assert r.status_code == 200, r.text
        await worker.drain()

    await presence("online")  # 09:00
    clock.tick(600)
    cid = await customer_writes(client, world["channel"], "alice", "hi")
    await assign(client, world["admin"], cid, anna)  # 09:10
    clock.tick(1800)
    await set_status(client, anna, cid, "resolved")  # 09:40
    clock.tick(1200)
    await presence("offline")  # 10:00: busy 30 of 60 online minutes
    clock.tick(3600)
    await presence("online")  # 11:00, and nothing to do until the report is read at 11:30
    clock.tick(1800)
    await worker.drain()
    rows = {row["name"]: row for row in (await get(client, world["sup"], "agents", start=DAY, end=DAY))["items"]}
    assert rows["Anna"]["occupancy"] == pytest.approx(30 / 90 * 100)
    assert "Boris" not in rows  # never online and nothing handled: not in the table
