"""Every conversation waiting for an agent says why — in the API, in the timeline (once per change of reason,
not at every routing pass) and in the supervisor's live view — in Russian and English."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from .conftest import Clock
from .test_routing import Floor

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture
async def floor(client, runtime, factory, admin) -> Floor:  # type: ignore[no-untyped-def]
    f = Floor(client, runtime, factory, admin)
    await f.setup()
    return f


def waiting_lines(conv: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(t["reason_code"], t["reason_params"]) for t in conv["transitions"]
            if t["reason_code"].startswith("waiting_")]


async def test_each_reason_in_turn_and_once_each(floor: Floor, clock: Clock) -> None:
    conv = await floor.customer_writes("w1")
    await floor.route()
    await floor.route()
    got = await floor.conversation(conv)
    assert got["waiting_reason"]["code"] == "nobody_online"
    assert got["waiting_reason"]["ru"] == "Нет никого в сети, кто может его взять"

    novice = await floor.agent("Nina Novice", level=1)
    clock.tick(5)
    await floor.route()
    await floor.route()
    got = await floor.conversation(conv)
    reason = got["waiting_reason"]
    assert (reason["code"], reason["params"]["skill"], reason["params"]["level"]) == ("no_skill", "Billing", 2)
    assert reason["en"] == "No agent with the skill Billing ≥ 2 is online"
    assert reason["ru"] == "В сети нет оператора с навыком Billing не ниже 2"
    assert dt.datetime.fromisoformat(reason["since"]) == clock.t

    # An expert, busy with someone else up to her capacity.
    other = await floor.customer_writes("w0")
    expert = await floor.agent("Olga Expert", level=4, capacity=1, online=False)
    r = await floor.client.post(f"/api/v1/conversations/{other}/assign", json={"assignee_id": expert.id},
                                headers=floor.admin.headers)
    assert r.status_code == 200, r.text
    await floor.presence(expert, "online")
    clock.tick(5)
    assert await floor.route() == []
    got = await floor.conversation(conv)
    assert (got["waiting_reason"]["code"], got["waiting_reason"]["params"]["agents"]) == ("at_capacity", 1)
    assert [c for c, _ in waiting_lines(got)] == ["waiting_nobody_online", "waiting_no_skill", "waiting_at_capacity"], \
        "a line when the reason changes, none for the passes in between"

    # She finishes the other one: the waiting conversation is hers, and no longer says it waits.
    r = await floor.client.post(f"/api/v1/conversations/{other}/status", json={"status": "resolved"},
                                headers=expert.headers)
    assert r.status_code == 200, r.text
    assert await floor.route() == [(conv, expert.id)]
    got = await floor.conversation(conv)
    assert got["waiting_reason"] is None
    assert novice.id != expert.id


async def test_outside_business_hours_says_when_it_opens(client, runtime, factory, admin, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    f = Floor(client, runtime, factory, admin)
    # 1 March 2031 is a Saturday; the queue works weekdays 09-18 Moscow time.
    await f.setup(business_hours={"timezone": "Europe/Moscow", "days": {
        d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}})
    conv = await f.customer_writes("w2")
    await f.route()
    reason = (await f.conversation(conv))["waiting_reason"]
    assert reason["code"] == "closed" and reason["params"]["opens"] == "2031-03-03 09:00 (Europe/Moscow)"
    assert reason["ru"] == "Очередь сейчас не работает; откроется 2031-03-03 09:00 (Europe/Moscow)"


async def test_the_supervisor_sees_why_in_the_live_view(floor: Floor, clock: Clock) -> None:
    sup = await floor.factory.user("supervisor")
    conv = await floor.customer_writes("w3")
    await floor.agent("Nina Novice", level=1)
    clock.tick(30)
    await floor.route()
    r = await floor.client.get("/api/v1/quality/live", headers=sup.headers)
    assert r.status_code == 200, r.text
    (row,) = [w for w in r.json()["waiting"] if w["conversation_id"] == conv]
    assert row["waiting_reason"]["code"] == "no_skill" and row["waited_seconds"] == 30
    r = await floor.client.get("/api/v1/conversations?status=queued", headers=floor.admin.headers)
    (item,) = [c for c in r.json()["items"] if c["id"] == conv]
    assert item["waiting_reason"]["code"] == "no_skill", "lists carry it too"
