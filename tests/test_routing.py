"""Routing as a contact centre meets it: conversations reach a fitting agent, capacity holds, a personal
manager gets their customers first, and the customer is told what is happening when they must wait.

Customers write through the API channel's real webhook; agents and administrators use the REST API; a
routing pass is run by the test (the server runs them on every change and every few seconds); time is the
test clock, timers fire when the test calls the timer worker.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from kommutator.agents.models import User
from kommutator.clock import now
from kommutator.conversations.models import Conversation
from kommutator.routing.service import router_of, understand_choice
from kommutator.runtime import Runtime
from kommutator.workers.timers import TimerWorker

from .conftest import Actor, Clock, Factory, post_inbound

pytestmark = pytest.mark.usefixtures("clock")


class Floor:
    """A small contact centre: a queue needing a skill, a channel into it, agents with levels."""

    def __init__(self, client: httpx.AsyncClient, rt: Runtime, factory: Factory, admin: Actor) -> None:
        self.client, self.rt, self.factory, self.admin = client, rt, factory, admin
        self.channel: dict[str, Any] = {}
        self.queue: dict[str, Any] = {}
        self.n = 0

    async def setup(self, **queue: Any) -> None:
        r = await self.client.post("/api/v1/skills", json={"name": "Billing"}, headers=self.admin.headers)
        assert r.status_code == 201, r.text
        self.skill = r.json()["id"]
        body = {"name": "Billing queue", "required_skills": [{"skill_id": self.skill, "min_level": 2}],
                "accept_timeout_seconds": 0, "wait_notice_seconds": 0, **queue}
        r = await self.client.post("/api/v1/queues", json=body, headers=self.admin.headers)
        assert r.status_code == 201, r.text
        self.queue = r.json()
        r = await self.client.post("/api/v1/channels",
                                   json={"type": "api", "name": "Site", "queue_id": self.queue["id"]},
                                   headers=self.admin.headers)
        assert r.status_code == 201, r.text
        self.channel = r.json()

    async def agent(self, name: str, *, level: int = 3, capacity: int = 2, online: bool = True) -> Actor:
        actor = await self.factory.user("agent", name=name)
        r = await self.client.put(f"/api/v1/users/{actor.id}/skills",
                                  json={"skills": [{"skill_id": self.skill, "level": level}]},
                                  headers=self.admin.headers)
        assert r.status_code == 200, r.text
        r = await self.client.patch(f"/api/v1/users/{actor.id}", json={"capacity": capacity},
                                    headers=self.admin.headers)
        assert r.status_code == 200, r.text
        if online:
            await self.presence(actor, "online")
        return actor

    async def presence(self, actor: Actor, presence: str) -> None:
        r = await self.client.patch(f"/api/v1/users/{actor.id}", json={"presence": presence}, headers=actor.headers)
        assert r.status_code == 200, r.text

    async def customer_writes(self, contact: str, text: str = "hello", language: str = "en") -> int:
        self.n += 1
        r = await post_inbound(self.client, self.channel, msg_id=f"m{self.n}", contact=contact, text=text,
                               name=contact.title())
        assert r.status_code == 200, r.text
        return int(r.json()["conversation_id"])

    async def route(self) -> list[tuple[int, int]]:
        assigned = []
        for result in await router_of(self.rt).run_until_idle():
            assigned += result.assigned
        return assigned

    async def conversation(self, conv_id: int, who: Actor | None = None) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/conversations/{conv_id}", headers=(who or self.admin).headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def to_customer(self, conv_id: int) -> list[str]:
        msgs = (await self.conversation(conv_id))["messages"]
        return [m["text"] for m in msgs if m["direction"] == "out"]


@pytest.fixture
async def floor(client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor) -> Floor:
    f = Floor(client, runtime, factory, admin)
    await f.setup()
    return f


async def test_a_conversation_reaches_an_agent_with_the_skill_and_the_timeline_says_why(floor: Floor) -> None:
    novice = await floor.agent("Novice", level=1)
    expert = await floor.agent("Expert", level=4)
    conv = await floor.customer_writes("alice")
    assert await floor.route() == [(conv, expert.id)]
    detail = await floor.conversation(conv)
    assert detail["status"] == "assigned" and detail["assignee_id"] == expert.id
    reason = detail["transitions"][-1]["reason"]
    assert "least busy" in reason and "Expert" in reason and "examined" in reason, reason
    assert novice.id != detail["assignee_id"]


async def test_least_busy_spreads_the_load_and_capacity_is_never_exceeded(floor: Floor) -> None:
    anna = await floor.agent("Anna", capacity=2)
    boris = await floor.agent("Boris", capacity=1)
    convs = [await floor.customer_writes(f"c{i}") for i in range(5)]
    assigned = dict(await floor.route())
    loads = {a: list(assigned.values()).count(a) for a in (anna.id, boris.id)}
    assert loads == {anna.id: 2, boris.id: 1}
    waiting = [c for c in convs if c not in assigned]
    assert len(waiting) == 2
    # The earliest customers were served first.
    assert sorted(assigned) == convs[:3]
    users = (await floor.client.get("/api/v1/users", headers=floor.admin.headers)).json()["items"]
    assert {u["id"]: u["load"] for u in users if u["id"] in loads} == {anna.id: 2, boris.id: 1}


async def test_freed_capacity_and_an_agent_coming_online_serve_the_queue_at_once(floor: Floor) -> None:
    anna = await floor.agent("Anna", capacity=1)
    first = await floor.customer_writes("c1")
    second = await floor.customer_writes("c2")
    assert await floor.route() == [(first, anna.id)]
    r = await floor.client.post(f"/api/v1/conversations/{first}/status", json={"status": "resolved"},
                                headers=anna.headers)
    assert r.status_code == 200, r.text
    assert await floor.route() == [(second, anna.id)]
    third = await floor.customer_writes("c3")
    assert await floor.route() == []
    boris = await floor.agent("Boris", online=False)
    assert await floor.route() == []  # offline agents get nothing
    await floor.presence(boris, "online")
    assert await floor.route() == [(third, boris.id)]


async def test_the_index_kept_between_passes_follows_changes_made_elsewhere(floor: Floor) -> None:
    """The router keeps its index between passes; what another process changes in the database (no event reaches
    this one) is seen by the next pass all the same: capacity, presence, and load."""
    router = router_of(floor.rt)
    router.live.resync = 3600.0  # no periodic full re-read within the test, however slow the machine
    anna = await floor.agent("Anna", capacity=1)
    boris = await floor.agent("Boris", capacity=1, online=False)
    first = await floor.customer_writes("c1")
    assert await floor.route() == [(first, anna.id)]
    rebuilds = router.live.rebuilds

    async def elsewhere(stmt: Any) -> None:  # a write by another process: no event on this process's bus
        async def job(tx: Any) -> None:
            await tx.conn.execute(stmt)
        await floor.rt.db.write(job)

    second = await floor.customer_writes("c2")
    assert await floor.route() == [], "Anna is full"
    await elsewhere(update(User).where(User.id == anna.id).values(capacity=2))
    assert await floor.route() == [(second, anna.id)]
    await elsewhere(update(User).where(User.id == anna.id).values(presence="away", presence_changed_at=now()))
    await elsewhere(update(User).where(User.id == boris.id).values(presence="online", presence_changed_at=now()))
    third = await floor.customer_writes("c3")
    assert await floor.route() == [(third, boris.id)]
    # Boris's conversation ends elsewhere: his capacity is free again for the next one.
    await elsewhere(update(Conversation).where(Conversation.id == third).values(status="resolved"))
    fourth = await floor.customer_writes("c4")
    assert await floor.route() == [(fourth, boris.id)]
    assert router.live.rebuilds == rebuilds, "the index was updated, not rebuilt"


async def test_round_robin_gives_everyone_one_before_anyone_gets_two(floor: Floor) -> None:
    r = await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"strategy": "round_robin"},
                                 headers=floor.admin.headers)
    assert r.status_code == 200, r.text
    agents = [await floor.agent(n, capacity=5) for n in ("A", "B", "C")]
    for i in range(6):
        await floor.customer_writes(f"c{i}")
    assigned = [a for _, a in await floor.route()]
    assert sorted(assigned) == sorted([a.id for a in agents] * 2)
    assert len(set(assigned[:3])) == 3


async def test_an_agent_who_does_not_open_in_time_loses_it_and_is_set_away(floor: Floor, clock: Clock) -> None:
    await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"accept_timeout_seconds": 60},
                             headers=floor.admin.headers)
    slow = await floor.agent("Slow", level=5)
    conv = await floor.customer_writes("c1")
    assert await floor.route() == [(conv, slow.id)]
    fast = await floor.agent("Fast", level=3)
    clock.tick(30)
    assert await TimerWorker(floor.rt.db).run_due() == 1  # the warning (tests/test_accept_timeout.py)
    clock.tick(31)
    assert await TimerWorker(floor.rt.db).run_due() == 1
    user = (await floor.client.get(f"/api/v1/users/{slow.id}", headers=floor.admin.headers)).json()
    assert user["presence"] == "away"
    assert await floor.route() == [(conv, fast.id)]
    detail = await floor.conversation(conv, fast)  # opening it accepts it
    assert detail["accepted_at"] is not None
    assert any("did not open it within 60 s" in t["reason"] for t in detail["transitions"])
    clock.tick(120)
    assert await TimerWorker(floor.rt.db).run_due() == 0
    assert (await floor.conversation(conv))["assignee_id"] == fast.id


async def _manager_of(floor: Floor, contact_name: str, manager: Actor) -> None:
    contacts = (await floor.client.get("/api/v1/contacts", params={"q": contact_name},
                                       headers=floor.admin.headers)).json()["items"]
    r = await floor.client.patch(f"/api/v1/contacts/{contacts[0]['id']}", json={"manager_id": manager.id},
                                 headers=floor.admin.headers)
    assert r.status_code == 200, r.text


async def test_the_personal_manager_gets_their_customer_first(floor: Floor) -> None:
    other = await floor.agent("Other", capacity=5)
    anna = await floor.agent("Anna Petrova", capacity=5)
    first = await floor.customer_writes("vip")
    assert await floor.route() == [(first, other.id)]
    await _manager_of(floor, "Vip", anna)
    await floor.client.post(f"/api/v1/conversations/{first}/status", json={"status": "resolved"},
                            headers=other.headers)
    second = await floor.customer_writes("vip", "one more question")
    assert second != first
    assert await floor.route() == [(second, anna.id)]
    assert "personal manager Anna Petrova" in (await floor.conversation(second))["transitions"][-1]["reason"]
    # The manager sees the earlier conversation another agent handled for her customer.
    r = await floor.client.get(f"/api/v1/conversations/{first}", headers=anna.headers)
    assert r.status_code == 200
    listed = (await floor.client.get("/api/v1/conversations", params={"status": "resolved"},
                                     headers=anna.headers)).json()["items"]
    assert [c["id"] for c in listed] == [first]


async def test_manager_away_the_customer_chooses_to_wait_and_gets_the_manager_back(floor: Floor) -> None:
    await floor.agent("Other", capacity=5)
    anna = await floor.agent("Anna", capacity=5, online=False)
    await floor.customer_writes("vip")
    await _manager_of(floor, "Vip", anna)
    conv = (await floor.client.get("/api/v1/conversations", headers=floor.admin.headers)).json()["items"][0]["id"]
    assert await floor.route() == []
    said = await floor.to_customer(conv)
    assert len(said) == 1 and "Your personal manager Anna is not available" in said[0]
    detail = await floor.conversation(conv)
    assert detail["routing_hold"] == "choice"
    assert [b["id"] for b in detail["messages"][-1]["payload"]["buttons"]] == ["route:wait", "route:other"]
    await floor.customer_writes("vip", "1")
    assert await floor.route() == []
    assert (await floor.conversation(conv))["routing_hold"] == "manager"
    assert "Anna will answer you as soon as they are back" in (await floor.to_customer(conv))[-1]
    await floor.presence(anna, "online")
    assert await floor.route() == [(conv, anna.id)]
    assert "Anna is back" in (await floor.to_customer(conv))[-1]


async def test_manager_away_the_customer_takes_another_specialist(floor: Floor) -> None:
    other = await floor.agent("Other", capacity=5)
    anna = await floor.agent("Anna", capacity=5, online=False)
    await floor.customer_writes("vip")
    await _manager_of(floor, "Vip", anna)
    conv = (await floor.client.get("/api/v1/conversations", headers=floor.admin.headers)).json()["items"][0]["id"]
    await floor.route()
    await floor.customer_writes("vip", "давайте другого специалиста")
    assert await floor.route() == [(conv, other.id)]


async def test_nonsense_twice_reaches_a_human_instead_of_looping(floor: Floor) -> None:
    other = await floor.agent("Other", capacity=5)
    anna = await floor.agent("Anna", capacity=5, online=False)
    await floor.customer_writes("vip")
    await _manager_of(floor, "Vip", anna)
    conv = (await floor.client.get("/api/v1/conversations", headers=floor.admin.headers)).json()["items"][0]["id"]
    await floor.route()
    await floor.customer_writes("vip", "qwerty")
    assert await floor.route() == []
    assert "did not understand" in (await floor.to_customer(conv))[-1]
    await floor.customer_writes("vip", "asdf")
    assert await floor.route() == [(conv, other.id)]


@pytest.mark.parametrize("expiry", ["queue", "ask"])
async def test_the_wait_for_the_manager_has_a_limit(floor: Floor, clock: Clock, expiry: str) -> None:
    await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}",
                             json={"manager_wait_seconds": 600, "manager_wait_expiry": expiry},
                             headers=floor.admin.headers)
    other = await floor.agent("Other", capacity=5)
    anna = await floor.agent("Anna", capacity=5, online=False)
    await floor.customer_writes("vip")
    await _manager_of(floor, "Vip", anna)
    conv = (await floor.client.get("/api/v1/conversations", headers=floor.admin.headers)).json()["items"][0]["id"]
    await floor.route()
    await floor.customer_writes("vip", "I will wait")
    await floor.route()
    clock.tick(599)
    assert await TimerWorker(floor.rt.db).run_due() == 0
    clock.tick(2)
    assert await TimerWorker(floor.rt.db).run_due() == 1
    if expiry == "queue":
        assert "still not available" in (await floor.to_customer(conv))[-1]
        assert await floor.route() == [(conv, other.id)]
    else:
        assert "not available right now" in (await floor.to_customer(conv))[-1]
        assert (await floor.conversation(conv))["routing_hold"] == "choice"
        assert await floor.route() == []


async def test_out_of_hours_the_customer_learns_when_the_team_is_back(floor: Floor) -> None:
    # The test clock says Saturday 2031-03-01 09:00 UTC = 12:00 in Moscow; the team works weekdays.
    weekdays = ("mon", "tue", "wed", "thu", "fri")
    hours = {"timezone": "Europe/Moscow", "days": {d: [["09:00", "18:00"]] for d in weekdays}}
    r = await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"business_hours": hours},
                                 headers=floor.admin.headers)
    assert r.status_code == 200 and r.json()["open_now"] is False, r.text
    conv = await floor.customer_writes("night")
    await floor.route()
    await floor.route()
    said = await floor.to_customer(conv)
    assert len(said) == 1
    assert "closed now and will be back on Monday 03.03 at 09:00 (Europe/Moscow)" in said[0]


async def test_a_long_wait_earns_the_queue_position_and_an_estimate_in_russian(floor: Floor, clock: Clock) -> None:
    await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"wait_notice_seconds": 120},
                             headers=floor.admin.headers)
    await floor.agent("Busy elsewhere", level=1)  # on duty, but without the queue's skill: the queue waits
    contacts = []
    for i in range(3):
        # The language comes from what the customer writes: the third one writes Russian.
        r = await post_inbound(floor.client, floor.channel, msg_id=f"ru{i}", contact=f"ru{i}",
                               text="Здравствуйте" if i == 2 else "Hello there", name=f"Иван {i}")
        contacts.append(r.json()["conversation_id"])
    await floor.route()
    assert await floor.to_customer(contacts[2]) == []
    clock.tick(121)
    await floor.route()
    said = await floor.to_customer(contacts[2])
    assert len(said) == 1 and said[0].startswith("Вы 3-й в очереди"), said
    assert (await floor.to_customer(contacts[0]))[0].startswith("You are number 1 in the queue")
    clock.tick(60)
    await floor.route()
    assert len(await floor.to_customer(contacts[2])) == 1  # not repeated every pass


async def test_queue_rules_are_validated_with_the_field_named(client: httpx.AsyncClient, admin: Actor,
                                                              factory: Factory) -> None:
    cases = [
        ({"name": "Q", "strategy": "fastest"}, "unknown_strategy", "round_robin"),
        ({"name": "Q", "required_skills": [{"skill_id": 999}]}, "skill_not_found", "999"),
        ({"name": "Q", "business_hours": {"timezone": "Mars/Olympus", "days": {}}}, "invalid_business_hours",
         "business_hours.timezone"),
        ({"name": "Q", "business_hours": {"timezone": "UTC", "days": {"mon": [["18:00", "09:00"]]}}},
         "invalid_business_hours", "business_hours.days.mon[0]"),
        ({"name": "Q", "manager_wait_expiry": "never"}, "validation_failed", "manager_wait_expiry"),
    ]
    for body, code, hint in cases:
        r = await client.post("/api/v1/queues", json=body, headers=admin.headers)
        assert r.status_code == 422 and r.json()["code"] == code and hint in r.text, (body, r.text)
    assert (await client.get("/api/v1/queues", headers=admin.headers)).json() == []
    agent = await factory.user("agent")
    r = await client.post("/api/v1/queues", json={"name": "Mine"}, headers=agent.headers)
    assert r.status_code == 403
    strategies = (await client.get("/api/v1/routing/strategies", headers=agent.headers)).json()
    assert {s["name"] for s in strategies} == {"least_busy", "longest_idle", "round_robin"}


@pytest.mark.parametrize(("text", "button", "expected"), [
    ("1", None, "wait"), ("2", None, "other"), ("", "route:wait", "wait"), ("x", "route:other", "other"),
    ("I'll wait", None, "wait"), ("подожду", None, "wait"), ("дождусь менеджера", None, "wait"),
    ("another one please", None, "other"), ("давайте другого", None, "other"), ("сейчас", None, "other"),
    ("wait for Anna", None, "wait"), ("Анна", None, None), ("hello", None, None), ("", None, None),
])
def test_the_choice_is_understood_in_both_languages(text: str, button: str | None, expected: str | None) -> None:
    assert understand_choice(text, button, "Anna") == expected


async def test_transfer_to_another_queue_routes_by_its_rules_and_keeps_the_history(floor: Floor) -> None:
    first = await floor.agent("First line", capacity=5)
    conv = await floor.customer_writes("c1", "my invoice is wrong")
    assert await floor.route() == [(conv, first.id)]
    r = await floor.client.post("/api/v1/skills", json={"name": "Disputes"}, headers=floor.admin.headers)
    disputes = r.json()["id"]
    r = await floor.client.post("/api/v1/queues", json={"name": "Disputes", "accept_timeout_seconds": 0,
                                                        "required_skills": [{"skill_id": disputes}]},
                                headers=floor.admin.headers)
    queue = r.json()["id"]
    lawyer = await floor.factory.user("agent", name="Lawyer")
    await floor.client.put(f"/api/v1/users/{lawyer.id}/skills", json={"skills": [{"skill_id": disputes, "level": 1}]},
                           headers=floor.admin.headers)
    await floor.presence(lawyer, "online")
    r = await floor.client.post(f"/api/v1/conversations/{conv}/assign",
                                json={"assignee_id": None, "queue_id": queue, "note": "Customer disputes invoice 7"},
                                headers=first.headers)
    assert r.status_code == 200, r.text
    assert await floor.route() == [(conv, lawyer.id)]
    detail = await floor.conversation(conv, lawyer)
    texts = [m["text"] for m in detail["messages"]]
    assert "my invoice is wrong" in texts and "Customer disputes invoice 7" in texts
    assert any("transferred to queue" in t["reason"] for t in detail["transitions"])


async def test_a_transfer_to_another_team_leaves_the_old_teams_queue(floor: Floor) -> None:
    support = await floor.factory.team("Support")
    sales = await floor.factory.team("Sales")
    r = await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}",
                                 json={"team_id": support, "required_skills": []}, headers=floor.admin.headers)
    assert r.status_code == 200, r.text
    helper = await floor.factory.user("agent", teams=[support], name="Support agent")
    seller = await floor.factory.user("agent", teams=[sales], name="Seller")
    conv = await floor.customer_writes("c1", "I want to buy")
    r = await floor.client.post(f"/api/v1/conversations/{conv}/assign",
                                json={"assignee_id": None, "team_id": sales, "note": "a sale"},
                                headers=floor.admin.headers)
    assert r.status_code == 200 and r.json()["queue_id"] is None, r.text
    await floor.presence(helper, "online")
    assert await floor.route() == []  # the old team's agent does not get the sales conversation
    await floor.presence(seller, "online")
    assert await floor.route() == [(conv, seller.id)]


async def test_with_nobody_on_duty_the_customer_is_told_once_not_their_position_all_night(
        floor: Floor, clock: Clock) -> None:
    await floor.client.patch(f"/api/v1/queues/{floor.queue['id']}", json={"wait_notice_seconds": 120},
                             headers=floor.admin.headers)
    night = await floor.agent("Night owl", level=4, online=False)
    conv = await floor.customer_writes("late", "Здравствуйте, вы работаете?")
    for _ in range(12 * 8):  # a night of passes, five minutes apart
        clock.tick(300)
        await floor.route()
    said = await floor.to_customer(conv)
    assert said == ["Сейчас все специалисты отошли. Ваше сообщение сохранено, специалист ответит на него, как "
                    "только вернётся."], said
    await floor.presence(night, "online")
    assert await floor.route() == [(conv, night.id)]
