"""The accept timeout, as an agent meets it: off unless a queue turns it on; when on, the agent is warned first,
a conversation is never taken from an agent who is answering customers (a reply or typing, in any
conversation), the timeline says why it moved, the agent is told when they are set Away, and the customer is
not told their queue position again because of the move. Time is the test clock; timers fire when the test
runs the timer worker.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kommutator.auth.principal import Principal
from kommutator.realtime.typing import TypingFrames
from kommutator.runtime import Runtime
from kommutator.workers.timers import TimerWorker

from .conftest import Actor, Clock, Factory, post_inbound
from .test_routing import Floor


@pytest.fixture
async def floor(client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor, clock: Clock) -> Floor:
    f = Floor(client, runtime, factory, admin)
    await f.setup()
    r = await client.patch(f"/api/v1/queues/{f.queue['id']}", json={"accept_timeout_seconds": 120},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    return f


async def notifications(client: httpx.AsyncClient, who: Actor) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/notifications", headers=who.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def presence(client: httpx.AsyncClient, admin: Actor, who: Actor) -> str:
    return str((await client.get(f"/api/v1/users/{who.id}", headers=admin.headers)).json()["presence"])


async def fire(rt: Runtime) -> int:
    return await TimerWorker(rt.db).run_due()


async def test_a_new_queue_has_no_accept_timeout(client: httpx.AsyncClient, admin: Actor, runtime: Runtime,
                                                 factory: Factory, clock: Clock) -> None:
    r = await client.post("/api/v1/queues", json={"name": "Plain"}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["accept_timeout_seconds"] == 0, r.text
    f = Floor(client, runtime, factory, admin)
    await f.setup(accept_timeout_seconds=None)
    agent = await f.agent("Olga")
    conv = await f.customer_writes("c1")
    assert await f.route() == [(conv, agent.id)]
    clock.tick(3600)
    assert await fire(runtime) == 0
    assert (await f.conversation(conv))["assignee_id"] == agent.id
    assert await presence(client, admin, agent) == "online"


async def test_the_agent_is_warned_then_told_they_are_away_and_the_timeline_says_why(
        floor: Floor, clock: Clock) -> None:
    slow = await floor.agent("Slow", level=5)
    r = await floor.client.patch(f"/api/v1/users/{slow.id}", json={"locale": "ru"}, headers=slow.headers)
    assert r.status_code == 200, r.text
    conv = await floor.customer_writes("c1")
    assert await floor.route() == [(conv, slow.id)]
    clock.tick(59)
    assert await fire(floor.rt) == 0
    clock.tick(1)  # a minute before the timeout: a warning, nothing moves
    assert await fire(floor.rt) == 1
    [warning] = await notifications(floor.client, slow)
    assert warning["kind"] == "accept_warning" and warning["conversation_id"] == conv
    assert warning["title"] == f"Откройте разговор №{conv} в течение 60 с"  # in the agent's own language
    assert warning["data"] == {"code": "accept_warning", "params": {"conversation_id": conv, "seconds": 60}}
    assert (await floor.conversation(conv))["assignee_id"] == slow.id
    assert await presence(floor.client, floor.admin, slow) == "online"
    fast = await floor.agent("Fast", level=3)
    clock.tick(60)
    assert await fire(floor.rt) == 1
    assert await presence(floor.client, floor.admin, slow) == "away"
    missed = (await notifications(floor.client, slow))[0]
    assert missed["kind"] == "accept_missed" and "«Отошёл»" in missed["title"]
    assert missed["data"]["params"]["set_away"] is True
    assert await floor.route() == [(conv, fast.id)]
    detail = await floor.conversation(conv, fast)
    assert any("Slow did not open it within 120 s and was not answering other customers; back to the queue; "
               "Slow set to away" == t["reason"] for t in detail["transitions"]), detail["transitions"]


async def test_an_agent_answering_another_customer_keeps_the_conversation(floor: Floor, clock: Clock) -> None:
    busy = await floor.agent("Busy", level=5, capacity=3)
    first = await floor.customer_writes("c1")
    second = await floor.customer_writes("c2")
    assert sorted(await floor.route()) == sorted([(first, busy.id), (second, busy.id)])
    await floor.conversation(first, busy)  # opens the first one (accepts it) ...
    clock.tick(60)
    assert await fire(floor.rt) == 1  # ... the second one's warning
    clock.tick(30)
    r = await floor.client.post(f"/api/v1/conversations/{first}/messages", json={"text": "Checking your order"},
                                headers=busy.headers)  # ... and is answering the first customer
    assert r.status_code == 201, r.text
    clock.tick(30)
    assert await fire(floor.rt) == 1
    assert (await floor.conversation(second))["assignee_id"] == busy.id  # not taken from them
    assert await presence(floor.client, floor.admin, busy) == "online"
    # Typing counts as answering too.
    typing = TypingFrames(floor.rt, Principal(user_id=busy.id, name="Busy", role="agent", team_ids=frozenset()))
    clock.tick(100)
    await typing.handle(json.dumps({"type": "typing", "conversation_id": first, "typing": True}))
    clock.tick(20)
    assert await fire(floor.rt) == 1
    assert (await floor.conversation(second))["assignee_id"] == busy.id
    clock.tick(120)  # idle for the whole timeout: now it goes back
    assert await fire(floor.rt) == 1
    assert (await floor.conversation(second))["status"] == "queued"


async def test_the_move_does_not_tell_the_customer_their_queue_position_again(floor: Floor, clock: Clock) -> None:
    r = await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"wait_notice_seconds": 120},
                                 headers=floor.admin.headers)
    assert r.status_code == 200, r.text
    await floor.agent("On duty", level=1)  # someone is on duty (without the skill): position notices go out
    r = await post_inbound(floor.client, floor.channel, msg_id="w1", contact="waiting", text="Hello, anyone there?")
    conv = int(r.json()["conversation_id"])
    clock.tick(200)
    await floor.route()
    told = await floor.to_customer(conv)
    assert len(told) == 1 and told[0].startswith("You are number 1"), told
    agent = await floor.agent("Away-ish", level=5)
    assert await floor.route() == [(conv, agent.id)]
    clock.tick(60)
    await fire(floor.rt)
    clock.tick(60)
    await fire(floor.rt)
    assert (await floor.conversation(conv))["status"] == "queued"
    await floor.route()
    assert await floor.to_customer(conv) == told  # nothing new for the customer
    clock.tick(120)
    await floor.route()
    assert len(await floor.to_customer(conv)) == 1  # the usual gap since the move, not since the first notice
    clock.tick(200)
    await floor.route()
    assert len(await floor.to_customer(conv)) == 2
