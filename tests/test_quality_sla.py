"""SLA clocks: business time arithmetic (against a minute-by-minute walk), clocks across days and time
zones, pauses while waiting for the customer, a warning and a breach exactly once each, and a restart in
the middle of a countdown. Time only moves by the test's clock."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kommutator.common.hours import is_open
from kommutator.config import Settings
from kommutator.quality.business_time import business_seconds, instant_after
from kommutator.quality.monitor import monitor_of
from kommutator.runtime import Runtime
from kommutator.workers.timers import TimerWorker

from .conftest import Actor, Clock, Factory
from .quality_support import alerts, clocks, customer_writes, policy, reply, set_status, settle
from .test_query_plans import captured

UTC = dt.UTC
ZONES = ["Europe/Moscow", "America/New_York", "Asia/Kolkata", "Asia/Vladivostok", "Europe/London"]
WEEKDAYS = {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]], "wed": [["09:00", "13:00"], ["14:00", "18:00"]],
            "thu": [["09:00", "18:00"]], "fri": [["09:00", "17:00"]]}


# --- Business time arithmetic ---------------------------------------------------------------------------

def _walk(hours: dict[str, Any], start: dt.datetime, end: dt.datetime) -> float:
    """The reference: count open minutes one by one."""
    total, t = 0.0, start
    while t < end:
        total += 60 if is_open(hours, t) else 0
        t += dt.timedelta(minutes=1)
    return total


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    days: dict[str, list[list[str]]] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        spans = []
        for _ in range(draw(st.integers(0, 2))):
            a = draw(st.integers(0, 47)) * 30
            b = draw(st.integers(a // 30 + 1, 48)) * 30
            spans.append([f"{a // 60:02d}:{a % 60:02d}", "24:00" if b == 1440 else f"{b // 60:02d}:{b % 60:02d}"])
        days[day] = spans
    return {"timezone": draw(st.sampled_from(ZONES)), "days": days,
            "holidays": draw(st.lists(st.sampled_from(["2031-03-03", "2031-03-10", "2031-11-02"]), max_size=1))}


# Three-day windows around the spring and autumn clock changes of New York and London.
_WINDOWS = [dt.datetime(2031, 3, 7, tzinfo=UTC), dt.datetime(2031, 10, 25, tzinfo=UTC),
            dt.datetime(2031, 10, 31, tzinfo=UTC)]
moments = st.builds(lambda base, m: base + dt.timedelta(minutes=m), st.sampled_from(_WINDOWS),
                    st.integers(0, 3 * 24 * 60))


spans = st.builds(lambda base, m1, m2: (base + dt.timedelta(minutes=min(m1, m2)),
                                        base + dt.timedelta(minutes=max(m1, m2))),
                  st.sampled_from(_WINDOWS), st.integers(0, 3 * 24 * 60), st.integers(0, 3 * 24 * 60))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hours=definitions(), span=spans)
def test_business_seconds_equal_a_minute_walk(hours: dict[str, Any], span: tuple[dt.datetime, dt.datetime]) -> None:
    start, end = span
    assert business_seconds(hours, start, end) == _walk(hours, start, end), (hours, start, end)


@settings(max_examples=100, deadline=None)
@given(hours=definitions(), start=moments, minutes=st.integers(1, 3000))
def test_instant_after_is_the_inverse(hours: dict[str, Any], start: dt.datetime, minutes: int) -> None:
    due = instant_after(hours, start, minutes * 60)
    if due is None:
        assert business_seconds(hours, start, start + dt.timedelta(days=400)) < minutes * 60
        return
    assert business_seconds(hours, start, due) == minutes * 60
    assert is_open(hours, due - dt.timedelta(seconds=1)), "the deadline falls in opening hours, not after a gap"


def test_daylight_saving_change_in_new_york() -> None:
    hours = {"timezone": "America/New_York", "days": {d: [["00:00", "24:00"]] for d in ("sat", "sun")}}
    # The night of 8-9 March 2031 the clocks jump from 02:00 to 03:00: that Sunday has 23 hours.
    sat = dt.datetime(2031, 3, 8, 5, 0, tzinfo=UTC)  # Saturday 00:00 EST
    mon = dt.datetime(2031, 3, 10, 4, 0, tzinfo=UTC)  # Monday 00:00 EDT
    assert business_seconds(hours, sat, mon) == 47 * 3600
    assert instant_after(hours, sat, 47 * 3600) == mon


def test_the_repeated_autumn_hour_counts_twice_and_the_spring_gap_not_at_all() -> None:
    # New York, 2 November 2031: 02:00 EDT becomes 01:00 EST, so 01:00-02:00 happens twice.
    autumn = {"timezone": "America/New_York", "days": {"sun": [["01:00", "02:00"]]}}
    day = dt.datetime(2031, 11, 2, 0, 0, tzinfo=UTC)
    assert business_seconds(autumn, day, day + dt.timedelta(days=1)) == 2 * 3600
    assert instant_after(autumn, day, 3600 + 60) == dt.datetime(2031, 11, 2, 6, 1, tzinfo=UTC), "01:01 EST"
    # 9 March 2031: 02:00 EST becomes 03:00 EDT; an interval 02:30-03:30 opens when the clocks jump.
    spring = {"timezone": "America/New_York", "days": {"sun": [["02:30", "03:30"]]}}
    day = dt.datetime(2031, 3, 9, 0, 0, tzinfo=UTC)
    assert business_seconds(spring, day, day + dt.timedelta(days=1)) == 30 * 60
    assert instant_after(spring, day, 60) == dt.datetime(2031, 3, 9, 7, 1, tzinfo=UTC)
    for hours, start in ((autumn, dt.datetime(2031, 11, 1, 12, tzinfo=UTC)), (spring, day)):
        end = start + dt.timedelta(days=1, hours=3)
        assert business_seconds(hours, start, end) == _walk(hours, start, end)


def test_never_open_has_no_deadline() -> None:
    assert instant_after({"timezone": "UTC", "days": {}}, dt.datetime(2031, 1, 1, tzinfo=UTC), 60) is None
    assert instant_after(None, dt.datetime(2031, 1, 1, tzinfo=UTC), 60) == dt.datetime(2031, 1, 1, 0, 1, tzinfo=UTC)


# --- Clocks on conversations ----------------------------------------------------------------------------

@pytest.fixture
async def team_setup(client: httpx.AsyncClient, factory: Factory, admin: Actor) -> dict[str, Any]:
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team], name="Anna Agent")
    supervisor = await factory.user("supervisor", teams=[team], name="Sergey Supervisor")
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return {"team": team, "agent": agent, "supervisor": supervisor, "channel": r.json()}


async def test_warning_and_breach_fire_exactly_once(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                    admin: Actor, team_setup: dict[str, Any]) -> None:
    agent, supervisor = team_setup["agent"], team_setup["supervisor"]
    await policy(client, admin, first_response_seconds=100, warn_percent=80)
    cid = await customer_writes(client, team_setup["channel"], "c1", "my parcel is late")
    r = await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": agent.id},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
    await settle(runtime)
    frt = (await clocks(runtime, cid))["first_response"]
    assert frt.status == "running"
    assert frt.due_at == clock.t + dt.timedelta(seconds=100)
    assert frt.warn_at == clock.t + dt.timedelta(seconds=80)

    clock.tick(79)
    await settle(runtime)
    assert await alerts(runtime) == []
    clock.tick(1)
    await settle(runtime)
    await settle(runtime)
    (warning,) = await alerts(runtime)
    assert warning.kind == "sla.warning" and warning.recipients["user_ids"] == [agent.id], \
        "the warning goes to the agent only"
    clock.tick(25)
    await settle(runtime)
    await settle(runtime)
    breaches = await alerts(runtime, "sla.breach")
    assert len(breaches) == 1
    assert set(breaches[0].recipients["user_ids"]) == {agent.id, supervisor.id}
    assert breaches[0].severity == "critical" and breaches[0].conversation_id == cid
    frt = (await clocks(runtime, cid))["first_response"]
    assert frt.breached_at == clock.t and frt.status == "running"

    # The agent answers late: the target is recorded as missed, and no further alert comes.
    clock.tick(10)
    await reply(client, agent, cid)
    await settle(runtime)
    frt = (await clocks(runtime, cid))["first_response"]
    assert (frt.status, frt.hit_at, frt.elapsed_seconds) == ("missed", clock.t, 115)
    assert len(await alerts(runtime)) == 2
    # The agent's bell got both, live (notification rows are what the socket delivers).
    r = await client.get("/api/v1/notifications", headers=agent.headers)
    assert [n["kind"] for n in r.json()["items"]] == ["sla.breach", "sla.warning"]


async def test_reply_in_time_is_a_hit_and_cancels_the_timers(client: httpx.AsyncClient, runtime: Runtime,
                                                             clock: Clock, admin: Actor,
                                                             team_setup: dict[str, Any]) -> None:
    agent = team_setup["agent"]
    await policy(client, admin, first_response_seconds=60, next_response_seconds=120)
    cid = await customer_writes(client, team_setup["channel"], "c2")
    await settle(runtime)
    clock.tick(30)
    await reply(client, agent, cid, "Hello, let me check")
    await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "internal", "kind": "note"},
                      headers=agent.headers)
    clock.tick(5)
    await customer_writes(client, team_setup["channel"], "c2", "any news?")
    clock.tick(5)
    await customer_writes(client, team_setup["channel"], "c2", "hello??")
    await settle(runtime)
    got = await clocks(runtime, cid)
    assert (got["first_response"].status, got["first_response"].elapsed_seconds) == ("hit", 30)
    (nxt,) = [c for k, c in got.items() if k.startswith("next_response")]
    assert nxt.started_at == clock.t - dt.timedelta(seconds=5), "the first message of a burst starts the clock"
    assert nxt.due_at == nxt.started_at + dt.timedelta(seconds=120)
    clock.tick(100)
    await reply(client, agent, cid, "Found it")
    clock.tick(1000)
    await settle(runtime)
    got = await clocks(runtime, cid)
    (nxt,) = [c for k, c in got.items() if k.startswith("next_response")]
    assert (nxt.status, nxt.elapsed_seconds) == ("hit", 105)
    assert await alerts(runtime) == [], "nothing was late"


async def test_business_hours_across_days_and_zones(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                    admin: Actor, team_setup: dict[str, Any]) -> None:
    hours = {"timezone": "Asia/Vladivostok", "days": WEEKDAYS}
    await policy(client, admin, first_response_seconds=2 * 3600, resolution_seconds=10 * 3600, clock="business",
                 business_hours=hours, warn_percent=50)
    # Friday 14 March 2031, 16:30 in Vladivostok (UTC+10) = 06:30 UTC; Friday closes at 17:00.
    clock.t = dt.datetime(2031, 3, 14, 6, 30, tzinfo=UTC)
    cid = await customer_writes(client, team_setup["channel"], "c3")
    await settle(runtime)
    got = await clocks(runtime, cid)
    # 30 minutes on Friday, 90 on Monday from 09:00: due Monday 10:30 local = 00:30 UTC.
    assert got["first_response"].due_at == dt.datetime(2031, 3, 17, 0, 30, tzinfo=UTC)
    assert got["first_response"].warn_at == dt.datetime(2031, 3, 16, 23, 30, tzinfo=UTC), "Monday 09:30 local"
    # Resolution: 0.5 h Fri + 9 h Mon (09-18) + 0.5 h Tue → Tuesday 09:30 local.
    assert got["resolution"].due_at == dt.datetime(2031, 3, 17, 23, 30, tzinfo=UTC)
    assert got["first_response"].business is True
    # The weekend passes: no warning yet, whatever the wall clock says.
    clock.t = dt.datetime(2031, 3, 16, 23, 29, tzinfo=UTC)
    await settle(runtime)
    assert await alerts(runtime) == []
    clock.tick(60)
    await settle(runtime)
    assert [a.kind for a in await alerts(runtime)] == ["sla.warning"]


async def test_waiting_for_the_customer_pauses_resolution(client: httpx.AsyncClient, runtime: Runtime,
                                                          clock: Clock, admin: Actor,
                                                          team_setup: dict[str, Any]) -> None:
    agent = team_setup["agent"]
    await policy(client, admin, resolution_seconds=3600, next_response_seconds=600)
    cid = await customer_writes(client, team_setup["channel"], "c4")
    start = clock.t
    clock.tick(60)
    await reply(client, agent, cid, "Hello! Please send the order number")
    await set_status(client, agent, cid, "waiting")
    await settle(runtime)
    res = (await clocks(runtime, cid))["resolution"]
    assert (res.status, res.due_at, res.elapsed_seconds) == ("paused", None, 60)
    clock.tick(5 * 3600)  # the customer takes five hours; nothing may fire meanwhile
    assert await settle(runtime) == 0
    assert await alerts(runtime) == []
    await customer_writes(client, team_setup["channel"], "c4", "it is 12345")  # wakes the conversation
    await settle(runtime)
    got = await clocks(runtime, cid)
    assert got["resolution"].status == "running"
    assert got["resolution"].due_at == start + dt.timedelta(seconds=3600 + 5 * 3600), "the pause is not counted"
    nxt = [c for k, c in got.items() if k.startswith("next_response")]
    assert len(nxt) == 1 and nxt[0].started_at == clock.t, "the customer's answer starts the next-response clock"
    clock.tick(50 * 60)
    await set_status(client, agent, cid, "resolved")
    await settle(runtime)
    got = await clocks(runtime, cid)
    assert (got["resolution"].status, got["resolution"].elapsed_seconds) == ("hit", 60 + 50 * 60)
    assert [c.status for k, c in got.items() if k.startswith("next_response")] == ["cancelled"]


async def test_priority_tightens_the_targets(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                             admin: Actor, team_setup: dict[str, Any]) -> None:
    await policy(client, admin, first_response_seconds=400, priority_factors={"urgent": 0.25})
    cid = await customer_writes(client, team_setup["channel"], "c5")
    await settle(runtime)
    assert (await clocks(runtime, cid))["first_response"].due_at == clock.t + dt.timedelta(seconds=400)
    r = await client.patch(f"/api/v1/conversations/{cid}", json={"priority": "urgent"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    await settle(runtime)
    assert (await clocks(runtime, cid))["first_response"].due_at == clock.t + dt.timedelta(seconds=100)


async def test_policy_conditions_choose_the_policy(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                   admin: Actor, team_setup: dict[str, Any]) -> None:
    await policy(client, admin, first_response_seconds=60, position=1, contact_attributes={"tier": ["vip"]})
    await policy(client, admin, first_response_seconds=900, position=2)
    vip = await customer_writes(client, team_setup["channel"], "vip1", attributes={"tier": "vip"})
    plain = await customer_writes(client, team_setup["channel"], "plain1")
    await settle(runtime)
    assert (await clocks(runtime, vip))["first_response"].target_seconds == 60
    assert (await clocks(runtime, plain))["first_response"].target_seconds == 900


async def test_restart_in_the_middle_of_a_countdown(settings: Settings, clock: Clock) -> None:
    """Schedule, stop everything, start a new runtime on the same database: the breach fires once."""
    from kommutator.app import create_app

    from .conftest import Factory as F

    rt1 = Runtime.build(settings)
    await rt1.db.start()
    app1 = create_app(runtime=rt1)
    transport = httpx.ASGITransport(app=app1, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c1:
        f = F(rt1)
        admin = await f.user("admin")
        team = await f.team("Night shift")
        await f.user("supervisor", teams=[team])
        ch = (await c1.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                            headers=admin.headers)).json()
        await policy(c1, admin, first_response_seconds=300)
        cid = await customer_writes(c1, ch, "night-owl")
        await monitor_of(rt1).drain()
        clock.tick(200)
        assert await TimerWorker(rt1.db).run_due() == 0
    await rt1.db.close()  # the "crash": the process is gone mid-countdown

    rt2 = Runtime.build(settings)
    await rt2.db.start()
    try:
        create_app(runtime=rt2)
        await monitor_of(rt2).sweep()  # what a start does; it must not schedule a second breach
        clock.tick(45)
        assert await TimerWorker(rt2.db).run_due() == 1, "the warning (at 240 s), scheduled before the crash"
        clock.tick(56)
        assert await TimerWorker(rt2.db).run_due() == 1, "the breach (at 300 s)"
        await monitor_of(rt2).sweep()
        assert await TimerWorker(rt2.db).run_due() == 0
        got = await alerts(rt2)
        assert [(a.kind, a.conversation_id) for a in got] == [("sla.warning", cid), ("sla.breach", cid)]
    finally:
        await rt2.db.close()


async def test_the_monitor_reconciles_a_burst_in_one_transaction(client: httpx.AsyncClient, runtime: Runtime,
                                                                 admin: Actor, team_setup: dict[str, Any]) -> None:
    """Per-message work batched: several customers writing several times cost one write transaction, and
    each conversation's clock is still right."""
    await policy(client, admin, first_response_seconds=300)
    monitor = monitor_of(runtime)
    await monitor.drain()
    cids = []
    for n in range(4):
        for text in ("hello", "anyone there?", "please"):
            cid = await customer_writes(client, team_setup["channel"], f"burst-{n}", text)
        cids.append(cid)
    writes: list[object] = []
    real_write = runtime.db.write

    async def counting_write(job: Any) -> Any:
        writes.append(job)
        return await real_write(job)

    runtime.db.write = counting_write  # type: ignore[method-assign]
    try:
        with captured(runtime) as statements:
            assert await monitor.drain() == 4, "one reconciliation per conversation, not one per event"
    finally:
        del runtime.db.write
    assert len(writes) == 1
    by_key = [s for s, _ in statements if re.search(r"FROM conversations\b", s) and "JOIN" not in s
              and s.lstrip().upper().startswith("SELECT conversations.id, conversations.contact_id".upper())]
    assert len(by_key) == 1, "the chunk's conversations are loaded in one statement, not one each"
    for table in ("sla_policies", "communication_standards"):
        assert sum(f"FROM {table}" in s for s, _ in statements) == 1, f"{table} read once per chunk"
    for cid in cids:
        assert (await clocks(runtime, cid))["first_response"].status == "running"
