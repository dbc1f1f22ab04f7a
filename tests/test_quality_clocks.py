"""Service-standard clocks agents can trust: the reply gap judged live and counting only the agent's own time,
a new resolution clock on reopening, and today's service level in the queue's time zone. Time only moves by
the test's clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kommutator.quality.models import StandardViolation
from kommutator.quality.reply_gap import Step, gap_seconds, stretch
from kommutator.runtime import Runtime

from .conftest import Actor, Clock, Factory
from .quality_support import Q, alerts, clocks, customer_writes, policy, reply, set_status, settle

UTC = dt.UTC
T0 = dt.datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# --- The agent's own time, pure --------------------------------------------------------------------------

def test_bot_and_queue_time_are_nobodys_gap() -> None:
    steps = [Step(at(0), "bot", None), Step(at(120), "queued", None), Step(at(200), "assigned", 7)]
    # The customer wrote at 0 (to the bot); agent 7 got it at 200 and replied at 230: 30 s are theirs.
    assert gap_seconds(steps, 7, at(0), at(230)) == 30
    assert gap_seconds(steps, 8, at(0), at(230)) is None, "not agent 8's conversation"


def test_a_transfer_starts_again_for_the_new_agent_and_back() -> None:
    steps = [Step(at(0), "assigned", 1), Step(at(50), "assigned", 2), Step(at(90), "assigned", 1)]
    assert gap_seconds(steps, 2, at(10), at(80)) == 30
    assert gap_seconds(steps, 1, at(10), at(100)) == 10, "back to agent 1: from the return, not from the start"
    assert stretch(steps, 1, at(40)) is not None and stretch(steps, 1, at(40)).start == at(0)  # type: ignore[union-attr]


def test_waiting_for_the_customer_and_snoozes_do_not_count() -> None:
    steps = [Step(at(0), "assigned", 1), Step(at(10), "waiting", 1), Step(at(70), "assigned", 1),
             Step(at(80), "snoozed", 1), Step(at(180), "assigned", 1)]
    assert gap_seconds(steps, 1, at(0), at(200)) == 10 + 10 + 20
    # Returned to the queue in between: the hold is broken, the agent's time starts at the new assignment.
    steps = [Step(at(0), "assigned", 1), Step(at(30), "queued", None), Step(at(100), "assigned", 1)]
    assert gap_seconds(steps, 1, at(0), at(110)) == 10


# --- Live, on conversations ------------------------------------------------------------------------------

@pytest.fixture
async def desk(client: httpx.AsyncClient, factory: Factory, admin: Actor) -> dict[str, Any]:
    team = await factory.team("Support")
    anna = await factory.user("agent", teams=[team], name="Anna Agent")
    boris = await factory.user("agent", teams=[team], name="Boris Agent")
    supervisor = await factory.user("supervisor", teams=[team], name="Sergey Supervisor")
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return {"team": team, "anna": anna, "boris": boris, "supervisor": supervisor, "channel": r.json()}


async def assign(client: httpx.AsyncClient, actor: Actor, cid: int, to: Actor) -> None:
    r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": to.id}, headers=actor.headers)
    assert r.status_code == 200, r.text


async def violations(rt: Runtime, cid: int) -> list[StandardViolation]:
    async with rt.db.read() as s:
        return list((await s.execute(select(StandardViolation).where(StandardViolation.conversation_id == cid)
                                     .order_by(StandardViolation.id))).scalars())


async def test_reply_gap_fires_live_and_counts_only_the_agents_time(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any]) -> None:
    anna, boris, sup = desk["anna"], desk["boris"], desk["supervisor"]
    r = await client.put(f"{Q}/standards/{desk['team']}", headers=sup.headers,
                         json={"greeting_required": False, "max_reply_gap_seconds": 60})
    assert r.status_code == 200, r.text
    cid = await customer_writes(client, desk["channel"], "gap1", "where is my parcel?")
    clock.tick(300)  # five minutes in the queue: nobody's gap
    await settle(runtime)
    assert await violations(runtime, cid) == []
    await assign(client, admin, cid, anna)
    clock.tick(50)
    await settle(runtime)
    await assign(client, sup, cid, boris)  # transferred: Boris's minute starts now
    clock.tick(59)
    await settle(runtime)
    assert await violations(runtime, cid) == [], "Anna had 50 s, Boris 59 s: nobody passed 60 s"
    clock.tick(1)
    await settle(runtime)  # the timer fires when the limit passes, before any reply
    (v,) = await violations(runtime, cid)
    assert (v.rule, v.agent_id, v.created_at) == ("reply_gap", boris.id, clock.t)
    (alert,) = await alerts(runtime, "standard.violation")
    assert alert.agent_id == boris.id and "Boris Agent" in alert.title and "1 min" in alert.title
    # Boris answers late: the gap was judged already, no second violation.
    clock.tick(30)
    await reply(client, boris, cid, "Sorry for the wait")
    await settle(runtime)
    assert len(await violations(runtime, cid)) == 1
    # The next message waits again; a reply in time is fine and cancels the timer.
    await customer_writes(client, desk["channel"], "gap1", "thanks, and?")
    await settle(runtime)
    clock.tick(40)
    await reply(client, boris, cid, "Here it is")
    clock.tick(600)
    await settle(runtime)
    assert len(await violations(runtime, cid)) == 1
    assert len(await alerts(runtime, "standard.violation")) == 1


async def test_waiting_for_the_customer_stops_the_gap(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                      admin: Actor, desk: dict[str, Any]) -> None:
    anna, sup = desk["anna"], desk["supervisor"]
    await client.put(f"{Q}/standards/{desk['team']}", headers=sup.headers,
                     json={"greeting_required": False, "max_reply_gap_seconds": 120})
    cid = await customer_writes(client, desk["channel"], "gap2", "hello")
    await assign(client, admin, cid, anna)
    clock.tick(100)
    await set_status(client, anna, cid, "waiting")  # e.g. asked elsewhere; the customer's turn
    await settle(runtime)
    clock.tick(3600)
    await settle(runtime)
    assert await violations(runtime, cid) == []
    await customer_writes(client, desk["channel"], "gap2", "here is the number")  # wakes it: Anna's again
    await settle(runtime)
    clock.tick(19)
    await settle(runtime)
    assert await violations(runtime, cid) == [], "100 s before the pause + 19 s after"
    clock.tick(1)
    await settle(runtime)
    assert [v.agent_id for v in await violations(runtime, cid)] == [anna.id]


async def test_a_late_reply_without_a_timer_is_judged_by_the_agents_time(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any]) -> None:
    """The reply comes before the monitor saw the conversation (no timer ran): judged on the reply, same time."""
    anna, sup = desk["anna"], desk["supervisor"]
    await client.put(f"{Q}/standards/{desk['team']}", headers=sup.headers,
                     json={"greeting_required": False, "max_reply_gap_seconds": 60})
    cid = await customer_writes(client, desk["channel"], "gap3", "hello")
    clock.tick(500)
    await assign(client, admin, cid, anna)
    clock.tick(45)
    await reply(client, anna, cid, "Hi")  # 545 s since the message, 45 s of them Anna's
    await settle(runtime)
    assert await violations(runtime, cid) == []
    await customer_writes(client, desk["channel"], "gap3", "?")
    clock.tick(75)
    await reply(client, anna, cid, "Checking")
    await runtime_monitor_drain(runtime)
    (v,) = await violations(runtime, cid)
    assert (v.rule, v.agent_id) == ("reply_gap", anna.id) and "75 s" in v.detail


async def runtime_monitor_drain(rt: Runtime) -> None:
    from kommutator.quality.monitor import monitor_of

    await monitor_of(rt).drain()


# --- A reopened conversation gets a new resolution clock -------------------------------------------------

async def test_a_reopened_conversation_gets_a_new_resolution_clock(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any]) -> None:
    anna = desk["anna"]
    await policy(client, admin, resolution_seconds=3600)
    cid = await customer_writes(client, desk["channel"], "re1", "my order")
    await assign(client, admin, cid, anna)
    clock.tick(600)
    await reply(client, anna, cid, "Done")
    await set_status(client, anna, cid, "resolved")
    await settle(runtime)
    (first,) = [c for c in (await clocks(runtime, cid)).values() if c.target == "resolution"]
    assert (first.status, first.elapsed_seconds) == ("hit", 600)
    clock.tick(7200)
    await set_status(client, anna, cid, "open")  # reopened
    reopened_at = clock.t
    await settle(runtime)
    got = await _resolution_clocks(runtime, cid)
    assert [c.status for c in got] == ["hit", "running"]
    assert got[1].started_at == reopened_at and got[1].due_at == reopened_at + dt.timedelta(seconds=3600)
    clock.tick(3601)
    await settle(runtime)
    await settle(runtime)
    breaches = await alerts(runtime, "sla.breach")
    assert len(breaches) == 1 and breaches[0].data["target"] == "resolution", "the reopened one can breach"
    await set_status(client, anna, cid, "resolved")
    await settle(runtime)
    got = await _resolution_clocks(runtime, cid)
    assert [(c.status, c.elapsed_seconds) for c in got] == [("hit", 600), ("missed", 3601)]
    (fact,) = await facts(runtime, cid)
    assert fact["sla_compliance"] == 0, "the report's SLA compliance comes from the same clocks: one was missed"


async def facts(rt: Runtime, *cids: int) -> list[dict[str, Any]]:
    from kommutator.reports.facts import load_facts

    async with rt.db.read() as s:
        found, _ = await load_facts(s, list(cids))
    return found


async def _resolution_clocks(rt: Runtime, cid: int) -> list[Any]:
    from kommutator.quality.models import SlaClock

    async with rt.db.read() as s:
        return list((await s.execute(select(SlaClock).where(SlaClock.conversation_id == cid,
                                                            SlaClock.target == "resolution")
                                     .order_by(SlaClock.id))).scalars())


# --- Service level today, in the queue's time zone -------------------------------------------------------

async def test_service_level_today_follows_the_queues_midnight_across_a_dst_change(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any]) -> None:
    anna, sup = desk["anna"], desk["supervisor"]
    week = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    r = await client.post("/api/v1/queues", headers=admin.headers, json={
        "name": "New York line", "team_id": desk["team"], "sl_target_seconds": 60,
        "business_hours": {"timezone": "America/New_York", "days": week}})
    assert r.status_code == 201, r.text
    queue = r.json()["id"]
    r = await client.patch(f"/api/v1/channels/{desk['channel']['id']}", json={"queue_id": queue},
                           headers=admin.headers)
    assert r.status_code == 200, r.text

    async def today() -> dict[str, Any]:
        r = await client.get(f"{Q}/live", headers=sup.headers)
        assert r.status_code == 200, r.text
        (line,) = [q for q in r.json()["queues"] if q["id"] == queue]
        return dict(line["service_level"])

    # 8 March 23:30 EST (04:30 UTC on the 9th): yesterday in New York, though the same UTC day as what follows.
    clock.t = dt.datetime(2031, 3, 9, 4, 30, tzinfo=UTC)
    late_evening = await customer_writes(client, desk["channel"], "ny-1")
    clock.tick(30)
    await reply(client, anna, late_evening, "Hello")
    # 9 March 00:30 EST: today; answered in 30 s.
    clock.t = dt.datetime(2031, 3, 9, 5, 30, tzinfo=UTC)
    just_after_midnight = await customer_writes(client, desk["channel"], "ny-2")
    clock.tick(30)
    await reply(client, anna, just_after_midnight, "Hello")
    # The clocks jump forward at 02:00 that night. 23:00 EDT (03:00 UTC on the 10th): still the 9th; unanswered.
    clock.t = dt.datetime(2031, 3, 10, 3, 0, tzinfo=UTC)
    await customer_writes(client, desk["channel"], "ny-3")
    clock.t = dt.datetime(2031, 3, 10, 3, 30, tzinfo=UTC)
    sl = await today()
    # The report's per-conversation figure follows the same rule (an open unanswered one is judged at resolution).
    assert [f["service_level"] for f in await facts(runtime, late_evening, just_after_midnight)] == [1, 1]
    assert sl["day_start"] == "2031-03-09T05:00:00Z" and sl["timezone"] == "America/New_York"
    assert (sl["met"], sl["counted"], sl["percent"]) == (1, 2, 50.0), \
        "the 00:30 one met, the 23:00 one waited past 60 s; yesterday's 23:30 is not today's"
    # 00:30 EDT on the 10th (04:30 UTC): a new day, which began 23 hours after the last one.
    clock.t = dt.datetime(2031, 3, 10, 4, 30, tzinfo=UTC)
    sl = await today()
    assert sl["day_start"] == "2031-03-10T04:00:00Z" and (sl["counted"], sl["percent"]) == (0, None)
    fresh = await customer_writes(client, desk["channel"], "ny-4")
    clock.tick(10)
    await reply(client, anna, fresh, "Hello")
    sl = await today()
    assert (sl["met"], sl["counted"], sl["percent"]) == (1, 1, 100.0)


def test_the_day_of_a_zone_is_23_or_25_hours_around_dst() -> None:
    from kommutator.quality.service_level import day_bounds, zone_of

    ny = zone_of({"timezone": "America/New_York"})
    start, end = day_bounds(dt.datetime(2031, 3, 9, 12, tzinfo=UTC), ny)
    assert (start, end - start) == (dt.datetime(2031, 3, 9, 5, tzinfo=UTC), dt.timedelta(hours=23))
    start, end = day_bounds(dt.datetime(2031, 11, 2, 12, tzinfo=UTC), ny)
    assert (start, end - start) == (dt.datetime(2031, 11, 2, 4, tzinfo=UTC), dt.timedelta(hours=25))
    assert day_bounds(dt.datetime(2031, 1, 1, 23, 59, tzinfo=UTC), zone_of(None))[0] == dt.datetime(
        2031, 1, 1, tzinfo=UTC)
