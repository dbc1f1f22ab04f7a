"""Conversations through the agent's eyes: replies and notes, channels, assignment and transfer, status,
labels, list filters and pagination, and message history."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from kommutator.channels.models import Channel
from kommutator.contacts.models import Contact
from kommutator.conversations import actions
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.workers.models import OutboxItem

from .conftest import Actor, Factory, post_inbound

CONV = "/api/v1/conversations"
_ids = itertools.count(1)


def at(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


async def inbound(client: httpx.AsyncClient, channel: dict[str, Any], contact: str, text: str = "hello",
                  **extra: Any) -> dict[str, Any]:
    """A customer message through the API channel; returns the channel's acknowledgement."""
    r = await post_inbound(client, channel, msg_id=f"msg-{next(_ids)}", contact=contact, text=text, **extra)
    assert r.status_code == 200, r.text
    return r.json()


async def get(client: httpx.AsyncClient, actor: Actor, cid: int) -> dict[str, Any]:
    r = await client.get(f"{CONV}/{cid}", headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def send(client: httpx.AsyncClient, actor: Actor, cid: int, text: str = "How can I help?",
               **body: Any) -> httpx.Response:
    return await client.post(f"{CONV}/{cid}/messages", json={"text": text, **body}, headers=actor.headers)


async def status(client: httpx.AsyncClient, actor: Actor, cid: int, to: str, **body: Any) -> httpx.Response:
    return await client.post(f"{CONV}/{cid}/status", json={"status": to, **body}, headers=actor.headers)


async def assign(client: httpx.AsyncClient, actor: Actor, cid: int, **body: Any) -> httpx.Response:
    return await client.post(f"{CONV}/{cid}/assign", json=body, headers=actor.headers)


async def rows(runtime, model, *where) -> list[Any]:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return list((await s.execute(select(model).where(*where).order_by(model.id))).scalars())


async def second_api_channel(client: httpx.AsyncClient, admin: Actor, name: str = "Shop") -> dict[str, Any]:
    r = await client.post("/api/v1/channels", json={"type": "api", "name": name}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def sup(factory: Factory) -> Actor:
    return await factory.user("supervisor")


# --- replies and notes -------------------------------------------------------------------------------------------


async def test_reply_is_queued_with_an_outbox_row_for_the_customers_channel(client, runtime, admin, api_channel):
    cid = (await inbound(client, api_channel, "crm-1", "Где мой заказ?"))["conversation_id"]
    r = await send(client, admin, cid, "Уже в пути!")
    assert r.status_code == 201, r.text
    msg = r.json()
    assert (msg["direction"], msg["sender_type"], msg["kind"], msg["status"]) == ("out", "agent", "text", "queued")
    assert msg["sender_user_id"] == admin.id and msg["channel_id"] == api_channel["id"]
    (item,) = await rows(runtime, OutboxItem)
    assert (item.kind, item.message_id, item.channel_id, item.status) == ("message", msg["id"], api_channel["id"],
                                                                          "pending")
    assert item.payload == {"to": "crm-1"}
    assert item.ordering_key == f"{api_channel['id']}:crm-1", "replies in one chat must keep their order"
    texts = [(m["direction"], m["text"]) for m in (await get(client, admin, cid))["messages"]]
    assert texts == [("in", "Где мой заказ?"), ("out", "Уже в пути!")]


async def test_reply_and_outbox_row_commit_together_or_not_at_all(app, runtime, admin, api_channel, monkeypatch):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
        real = actions.OutboxItem

        def refused_by_the_database(**kw: Any) -> OutboxItem:
            return real(**{**kw, "channel_id": 987654321})  # violates the foreign key at commit

        monkeypatch.setattr(actions, "OutboxItem", refused_by_the_database)
        r = await send(client, admin, cid)
        assert r.status_code == 500
        monkeypatch.setattr(actions, "OutboxItem", real)
        assert [m.direction for m in await rows(runtime, Message)] == ["in"], "the reply must roll back with it"
        assert await rows(runtime, OutboxItem) == []
        conv = await get(client, admin, cid)
        assert (conv["status"], conv["assignee_id"], conv["first_response_at"]) == ("queued", None, None)
        assert (await send(client, admin, cid)).status_code == 201
        assert len(await rows(runtime, OutboxItem)) == 1


async def test_private_note_is_never_sent_and_changes_nothing_for_the_customer(client, runtime, admin, api_channel):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    r = await send(client, admin, cid, "VIP, be nice", kind="note")
    assert r.status_code == 201, r.text
    note = r.json()
    assert (note["direction"], note["kind"], note["channel_id"]) == ("internal", "note", None)
    assert note["status"] != "queued"
    assert await rows(runtime, OutboxItem) == []
    conv = await get(client, admin, cid)
    assert (conv["status"], conv["assignee_id"], conv["first_response_at"]) == ("queued", None, None)
    r = await send(client, admin, cid, "note", kind="note", channel_id=api_channel["id"])
    assert r.status_code == 422 and r.json()["code"] == "note_has_no_channel"
    assert await rows(runtime, OutboxItem) == []


async def test_reply_goes_to_the_channel_of_the_customers_latest_message(client, runtime, admin, api_channel):
    shop = await second_api_channel(client, admin)
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    assert (await inbound(client, shop, "crm-1"))["conversation_id"] == cid, "one customer, one conversation"
    assert (await get(client, admin, cid))["last_inbound_channel_id"] == shop["id"]
    assert (await send(client, admin, cid, "one")).json()["channel_id"] == shop["id"]
    await inbound(client, api_channel, "crm-1")
    assert (await send(client, admin, cid, "two")).json()["channel_id"] == api_channel["id"]
    r = await send(client, admin, cid, "three", channel_id=shop["id"])
    assert r.status_code == 201 and r.json()["channel_id"] == shop["id"]
    outbox = await rows(runtime, OutboxItem)
    assert [(o.channel_id, o.payload["to"]) for o in outbox] == [(shop["id"], "crm-1"), (api_channel["id"], "crm-1"),
                                                                 (shop["id"], "crm-1")]


async def test_another_channel_needs_an_identity_of_its_type(client, runtime, admin, api_channel):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    contact_id = (await get(client, admin, cid))["contact_id"]

    async def add_telegram(tx):  # type: ignore[no-untyped-def]
        # Only the API adapter exists so far; a row is all the reply path reads about a channel.
        row = Channel(type="telegram", name="Bot", settings={}, credentials_encrypted="", enabled=True)
        tx.session.add(row)
        await tx.session.flush()
        return row.id

    tg = await runtime.db.write(add_telegram)
    r = await send(client, admin, cid, channel_id=tg)
    assert r.status_code == 422 and r.json()["code"] == "no_identity_on_channel"
    assert "telegram" in r.json()["detail"]
    assert await rows(runtime, OutboxItem) == [] and len(await rows(runtime, Message)) == 1
    r = await client.post(f"/api/v1/contacts/{contact_id}/identities",
                          json={"channel_type": "telegram", "external_id": "555123"}, headers=admin.headers)
    assert r.status_code == 201, r.text
    r = await send(client, admin, cid, channel_id=tg)
    assert r.status_code == 201 and r.json()["channel_id"] == tg
    (item,) = await rows(runtime, OutboxItem)
    assert (item.channel_id, item.payload, item.ordering_key) == (tg, {"to": "555123"}, f"{tg}:555123")

    r = await send(client, admin, cid, channel_id=987654)
    assert r.status_code == 422 and r.json()["code"] == "channel_not_found"
    await client.patch(f"/api/v1/channels/{api_channel['id']}", json={"enabled": False}, headers=admin.headers)
    r = await send(client, admin, cid)
    assert r.status_code == 409 and r.json()["code"] == "channel_disabled"
    assert len(await rows(runtime, OutboxItem)) == 1


async def test_first_response_is_the_first_agent_reply_not_a_note(client, admin, api_channel, clock):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    clock.tick(30)
    await send(client, admin, cid, "internal", kind="note")
    assert (await get(client, admin, cid))["first_response_at"] is None
    first = clock.tick(30)
    assert (await send(client, admin, cid, "Hello!")).status_code == 201
    clock.tick(30)
    await inbound(client, api_channel, "crm-1", "thanks")
    clock.tick(30)
    await send(client, admin, cid, "You are welcome")
    conv = await get(client, admin, cid)
    assert at(conv["first_response_at"]) == first
    assert at(conv["last_message_at"]) == clock.t


async def test_replying_to_a_queued_conversation_assigns_it_to_the_replier(client, factory, api_channel):
    supervisor = await sup(factory)
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team])
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    r = await assign(client, supervisor, cid, team_id=team)
    assert r.status_code == 200 and (r.json()["status"], r.json()["assignee_id"]) == ("queued", None)
    assert (await send(client, agent, cid)).status_code == 201
    conv = await get(client, agent, cid)
    assert (conv["status"], conv["assignee_id"], conv["team_id"]) == ("assigned", agent.id, team)
    assert conv["assigned_at"] is not None
    last = conv["transitions"][-1]
    assert (last["from_status"], last["to_status"], last["assignee_id"], last["actor_user_id"]) == (
        "queued", "assigned", agent.id, agent.id)
    assert last["reason"] == "the agent replied"
    await send(client, agent, cid, "more")
    assert len((await get(client, agent, cid))["transitions"]) == len(conv["transitions"]), "no transition twice"


# --- assignment and transfer -------------------------------------------------------------------------------------


async def test_transfer_to_a_colleague_with_a_handover_note(client, runtime, factory, admin, api_channel):
    first, second = await factory.user("agent", name="Anna"), await factory.user("agent", name="Boris")
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    assert (await assign(client, admin, cid, assignee_id=first.id)).json()["assignee_id"] == first.id
    r = await assign(client, first, cid, assignee_id=second.id, note="Wants a refund for order 77")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee_id"]) == ("assigned", second.id)
    conv = await get(client, second, cid)
    note = conv["messages"][-1]
    assert (note["kind"], note["direction"], note["sender_user_id"], note["text"]) == (
        "note", "internal", first.id, "Wants a refund for order 77")
    assert note["payload"]["handover"] == {"from_assignee_id": first.id, "to_assignee_id": second.id,
                                           "to_team_id": None}
    last = conv["transitions"][-1]
    assert (last["from_status"], last["to_status"], last["assignee_id"], last["actor_user_id"]) == (
        "assigned", "assigned", second.id, first.id)
    assert "Wants a refund for order 77" in last["reason"] and "Anna" in last["reason"]
    assert await rows(runtime, OutboxItem) == [], "a handover note is private"


async def test_transfer_to_a_team_puts_it_in_that_teams_queue(client, factory, admin, api_channel):
    billing = await factory.team("Billing")
    agent = await factory.user("agent")
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    await assign(client, admin, cid, assignee_id=agent.id)
    r = await assign(client, agent, cid, team_id=billing, note="Invoice question")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee_id"], r.json()["team_id"]) == ("queued", None, billing)
    conv = await get(client, admin, cid)
    assert conv["messages"][-1]["payload"]["handover"] == {"from_assignee_id": agent.id, "to_assignee_id": None,
                                                           "to_team_id": billing}
    last = conv["transitions"][-1]
    assert (last["from_status"], last["to_status"], last["team_id"], last["actor_user_id"]) == (
        "assigned", "queued", billing, agent.id)
    assert "Invoice question" in last["reason"]
    assert [t["to_status"] for t in conv["transitions"]] == ["queued", "assigned", "queued"]


async def test_assign_to_an_unknown_user_or_team_is_refused(client, runtime, factory, admin, api_channel):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    retired = await factory.user("agent")
    await client.patch(f"/api/v1/users/{retired.id}", json={"active": False}, headers=admin.headers)
    for body, code in (({"assignee_id": 999999}, "assignee_not_found"), ({"assignee_id": retired.id},
                                                                           "assignee_not_found"),
                       ({"team_id": 999999}, "team_not_found")):
        r = await assign(client, admin, cid, **body, note="x")
        assert r.status_code == 422 and r.json()["code"] == code, body
    conv = await get(client, admin, cid)
    assert (conv["status"], conv["assignee_id"], conv["team_id"]) == ("queued", None, None)
    assert len(conv["messages"]) == 1 and len(conv["transitions"]) == 1


# --- status ------------------------------------------------------------------------------------------------------


async def test_status_lifecycle_is_recorded_step_by_step(client, factory, admin, api_channel, clock):
    agent = await factory.user("agent")
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    await assign(client, admin, cid, assignee_id=agent.id)

    t = clock.tick()
    r = await status(client, agent, cid, "waiting", reason="asked for the order number")
    assert r.status_code == 200 and r.json()["status"] == "waiting" and at(r.json()["waiting_since"]) == t
    r = await status(client, agent, cid, "open")
    assert (r.json()["status"], r.json()["waiting_since"]) == ("assigned", None)
    until = clock.t + dt.timedelta(days=1)
    r = await status(client, agent, cid, "snoozed", snoozed_until=until.isoformat())
    assert r.status_code == 200 and r.json()["status"] == "snoozed" and at(r.json()["snoozed_until"]) == until
    t = clock.tick()
    r = await status(client, agent, cid, "queued")
    body = r.json()
    assert (body["status"], body["assignee_id"], body["snoozed_until"]) == ("queued", None, None)
    assert at(body["queued_at"]) == t
    await assign(client, admin, cid, assignee_id=agent.id)
    t = clock.tick()
    r = await status(client, agent, cid, "resolved")
    assert r.json()["status"] == "resolved" and at(r.json()["resolved_at"]) == t
    t = clock.tick()
    r = await status(client, agent, cid, "open")
    body = r.json()
    assert (body["status"], body["assignee_id"], body["resolved_at"]) == ("assigned", agent.id, None)
    assert at(body["reopened_at"]) == t

    conv = await get(client, admin, cid)
    steps = [(t["from_status"], t["to_status"]) for t in conv["transitions"]]
    assert steps == [(None, "queued"), ("queued", "assigned"), ("assigned", "waiting"), ("waiting", "assigned"),
                     ("assigned", "snoozed"), ("snoozed", "queued"), ("queued", "assigned"),
                     ("assigned", "resolved"), ("resolved", "assigned")]
    assert {t["actor_user_id"] for t in conv["transitions"][2:]} <= {agent.id, admin.id}
    assert conv["transitions"][2]["reason"] == "asked for the order number"


@pytest.mark.parametrize("until", [None, "2099-01-01T09:00:00", "2001-01-01T00:00:00Z", "past"])
async def test_snooze_needs_a_future_time_with_a_timezone(client, admin, api_channel, clock, until):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    body = {} if until is None else {"snoozed_until": (clock.t - dt.timedelta(seconds=1)).isoformat()
                                     if until == "past" else until}
    r = await status(client, admin, cid, "snoozed", **body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "snooze_needs_future_time"
    conv = await get(client, admin, cid)
    assert (conv["status"], conv["snoozed_until"]) == ("queued", None)


async def test_snoozing_again_moves_the_wake_up_time(client, admin, api_channel, clock):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    soon, later = clock.t + dt.timedelta(hours=1), clock.t + dt.timedelta(days=2)
    assert (await status(client, admin, cid, "snoozed", snoozed_until=soon.isoformat())).status_code == 200
    r = await status(client, admin, cid, "snoozed", snoozed_until=later.isoformat())
    assert r.status_code == 200, r.text
    assert at(r.json()["snoozed_until"]) == later
    r = await status(client, admin, cid, "snoozed", snoozed_until="2001-01-01T00:00:00Z")
    assert r.status_code == 422 and r.json()["code"] == "snooze_needs_future_time"
    assert at((await get(client, admin, cid))["snoozed_until"]) == later


async def test_a_resolved_conversation_can_only_be_reopened(client, admin, api_channel, clock):
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    r = await status(client, admin, cid, "open")
    assert r.status_code == 409 and r.json()["code"] == "already_open"
    assert (await status(client, admin, cid, "resolved")).status_code == 200
    future = (clock.t + dt.timedelta(days=1)).isoformat()
    for to, extra in (("waiting", {}), ("snoozed", {"snoozed_until": future}), ("queued", {})):
        r = await status(client, admin, cid, to, **extra)
        assert r.status_code == 409, (to, r.text)
        assert r.json()["code"] == "conversation_resolved"
        assert "open" in r.json()["detail"], "the error says how to proceed"
    assert (await get(client, admin, cid))["status"] == "resolved"
    r = await status(client, admin, cid, "open")
    assert r.status_code == 200 and r.json()["status"] == "queued"


@pytest.mark.parametrize("paused", ["waiting", "snoozed"])
async def test_customer_message_brings_a_paused_conversation_back_to_its_agent(client, factory, admin,
                                                                               api_channel, clock, paused):
    agent = await factory.user("agent")
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    await assign(client, admin, cid, assignee_id=agent.id)
    extra = {"snoozed_until": (clock.t + dt.timedelta(days=3)).isoformat()} if paused == "snoozed" else {}
    assert (await status(client, agent, cid, paused, **extra)).json()["status"] == paused
    assert (await inbound(client, api_channel, "crm-1", "any news?"))["conversation_id"] == cid
    conv = await get(client, agent, cid)
    assert (conv["status"], conv["assignee_id"], conv["waiting_since"], conv["snoozed_until"]) == (
        "assigned", agent.id, None, None)
    last = conv["transitions"][-1]
    assert (last["from_status"], last["to_status"], last["actor_user_id"], last["reason"]) == (
        paused, "assigned", None, "the customer wrote")


async def test_customer_message_after_resolution_starts_a_new_conversation(client, admin, api_channel):
    old = await inbound(client, api_channel, "crm-1", "first problem")
    await send(client, admin, old["conversation_id"])
    await status(client, admin, old["conversation_id"], "resolved")
    new = await inbound(client, api_channel, "crm-1", "second problem")
    assert new["conversation_id"] != old["conversation_id"]
    fresh = await get(client, admin, new["conversation_id"])
    assert (fresh["status"], fresh["assignee_id"], fresh["first_response_at"]) == ("queued", None, None)
    assert [m["text"] for m in fresh["messages"]] == ["second problem"]
    closed = await get(client, admin, old["conversation_id"])
    assert closed["status"] == "resolved" and fresh["contact_id"] == closed["contact_id"]
    assert [m["text"] for m in closed["messages"]] == ["first problem", "How can I help?"]


# --- labels ------------------------------------------------------------------------------------------------------


async def test_labels_replace_the_set_and_filter_the_list(client, admin, api_channel):
    a = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    b = (await inbound(client, api_channel, "crm-2"))["conversation_id"]
    url = f"{CONV}/{a}/labels"
    r = await client.put(url, json={"labels": ["VIP", "billing", "vip"]}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["labels"] == ["billing", "vip"]
    await client.put(f"{CONV}/{b}/labels", json={"labels": ["billing"]}, headers=admin.headers)
    r = await client.put(url, json={"labels": ["refund"]}, headers=admin.headers)
    assert r.json()["labels"] == ["refund"], "the set is replaced, not added to"
    assert (await get(client, admin, a))["labels"] == ["refund"]

    async def labelled(label: str) -> list[int]:
        r = await client.get(CONV, params={"label": label}, headers=admin.headers)
        return [c["id"] for c in r.json()["items"]]

    assert await labelled("refund") == [a]
    assert await labelled("REFUND") == [a]
    assert await labelled("billing") == [b]
    assert await labelled("vip") == []
    r = await client.put(url, json={"labels": ["no spaces"]}, headers=admin.headers)
    assert r.status_code == 422
    assert (await client.put(url, json={"labels": []}, headers=admin.headers)).json()["labels"] == []
    assert await labelled("refund") == []


# --- list filters and pagination ---------------------------------------------------------------------------------


@pytest.fixture
async def scene(client, factory, admin, api_channel, clock) -> dict[str, Any]:
    """Four conversations that differ in every filterable way."""
    shop = await second_api_channel(client, admin)
    support = await factory.team("Support")
    anna = await factory.user("agent", teams=[support])
    boris = await factory.user("agent")
    sup_ = await sup(factory)
    ids: dict[str, int] = {}
    for name, channel in (("alice", api_channel), ("bob", shop), ("carol", api_channel), ("dave", api_channel)):
        clock.tick()
        ids[name] = (await inbound(client, channel, f"crm-{name}", name=f"{name.title()} Brown"
                                   if name == "alice" else name.title()))["conversation_id"]
    await assign(client, admin, ids["alice"], assignee_id=anna.id, team_id=support)
    await assign(client, admin, ids["bob"], team_id=support)
    await status(client, admin, ids["carol"], "resolved")
    await assign(client, admin, ids["dave"], assignee_id=boris.id)
    await status(client, admin, ids["dave"], "waiting")
    contact = (await get(client, admin, ids["alice"]))["contact_id"]
    return {"ids": ids, "team": support, "shop": shop["id"], "api": api_channel["id"], "alice_contact": contact,
            "boris_id": boris.id, "actors": {"anna": anna, "boris": boris, "sup": sup_}}


FILTER_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("sup", {}, ["dave", "carol", "bob", "alice"]),
    ("anna", {"view": "mine"}, ["alice"]),
    ("boris", {"view": "mine"}, ["dave"]),
    ("sup", {"view": "mine"}, []),
    ("sup", {"view": "unassigned"}, ["carol", "bob"]),
    ("anna", {"view": "unassigned"}, ["bob"]),
    ("sup", {"status": "open"}, ["dave", "bob", "alice"]),
    ("sup", {"status": "resolved"}, ["carol"]),
    ("sup", {"status": ["waiting", "queued"]}, ["dave", "bob"]),
    ("sup", {"status": ["open", "resolved"]}, ["dave", "carol", "bob", "alice"]),
    ("sup", {"team_id": "team"}, ["bob", "alice"]),
    ("sup", {"assignee_id": "boris_id"}, ["dave"]),
    ("sup", {"channel_id": "shop"}, ["bob"]),
    ("sup", {"channel_id": "api", "status": "open"}, ["dave", "alice"]),
    ("sup", {"contact_id": "alice_contact"}, ["alice"]),
    ("sup", {"q": "brown"}, ["alice"]),
    ("sup", {"q": "crm-bob"}, ["bob"]),
    ("sup", {"q": "nobody"}, []),
    ("sup", {"view": "unassigned", "status": "open", "team_id": "team"}, ["bob"]),
]


async def test_list_filters(client, scene):
    """Each filter alone and combined; one scene for all cases keeps this fast."""
    wrong = []
    for who, params, expected in FILTER_CASES:
        resolved = {k: scene[v] if isinstance(v, str) and v in scene else v for k, v in params.items()}
        r = await client.get(CONV, params=resolved, headers=scene["actors"][who].headers)
        assert r.status_code == 200, (params, r.text)
        got = [c["id"] for c in r.json()["items"]]
        if got != [scene["ids"][n] for n in expected]:
            names = {v: k for k, v in scene["ids"].items()}
            wrong.append(f"{who} {params}: expected {expected}, got {[names.get(i, i) for i in got]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("params", [{"status": "closed"}, {"view": "everything"}, {"limit": 0}, {"limit": 201}])
async def test_list_rejects_unknown_filter_values(client, admin, params):
    r = await client.get(CONV, params=params, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_failed"


async def test_a_cursor_that_is_not_ours_is_400(client, admin):
    for cursor in ("garbage!", "WyJ4IiwxXQ"):  # the second decodes to ["x", 1]
        r = await client.get(CONV, params={"cursor": cursor}, headers=admin.headers)
        assert r.status_code == 400 and r.json()["code"] == "invalid_cursor", cursor


async def _wipe(runtime) -> None:  # type: ignore[no-untyped-def]
    async def job(tx):  # type: ignore[no-untyped-def]
        await tx.session.execute(delete(Conversation))
        await tx.session.execute(delete(Contact))

    await runtime.db.write(job)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offsets=st.lists(st.integers(0, 3), max_size=16), page=st.integers(1, 6))
async def test_cursor_walk_sees_every_conversation_once_newest_first(client, runtime, admin, api_channel, clock,
                                                                     offsets, page):
    """Many conversations share a last_message_at (offsets repeat); the id breaks the tie."""
    await _wipe(runtime)
    base = clock.t
    made: list[tuple[dt.datetime, int]] = []
    for offset in offsets:
        clock.t = base + dt.timedelta(seconds=offset)
        made.append((clock.t, (await inbound(client, api_channel, f"p-{next(_ids)}"))["conversation_id"]))
    clock.t = base + dt.timedelta(seconds=10)
    expected = [cid for _, cid in sorted(made, key=lambda m: (m[0], m[1]), reverse=True)]

    seen: list[int] = []
    stamps: list[dt.datetime] = []
    pages, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": page, **({"cursor": cursor} if cursor else {})}
        r = await client.get(CONV, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= page
        seen += [c["id"] for c in body["items"]]
        stamps += [at(c["last_message_at"]) for c in body["items"]]  # type: ignore[misc]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages <= len(offsets), "the walk must end"
    assert seen == expected
    assert stamps == sorted(stamps, reverse=True)
    assert pages == max(1, math.ceil(len(offsets) / page)), "no empty trailing page"


async def test_cursor_walk_with_a_filter_keeps_the_filter(client, admin, api_channel, clock):
    made = []
    for i in range(7):
        clock.tick()
        made.append((await inbound(client, api_channel, f"f-{i}"))["conversation_id"])
    for cid in made[::2]:
        await status(client, admin, cid, "resolved")
    seen, cursor = [], None
    while True:
        r = await client.get(CONV, params={"status": "open", "limit": 2, **({"cursor": cursor} if cursor else {})},
                             headers=admin.headers)
        seen += [c["id"] for c in r.json()["items"]]
        if not (cursor := r.json()["next_cursor"]):
            break
    assert seen == made[1::2][::-1]


# --- message history ---------------------------------------------------------------------------------------------


async def test_messages_catch_up_after_an_id_and_page_back_before_one(client, admin, api_channel):
    cid = (await inbound(client, api_channel, "crm-1", "m0"))["conversation_id"]
    for i in range(1, 7):
        if i % 2:
            assert (await send(client, admin, cid, f"m{i}", kind="note" if i == 3 else "text")).status_code == 201
        else:
            await inbound(client, api_channel, "crm-1", f"m{i}")
    url = f"{CONV}/{cid}/messages"

    async def page(**params: Any) -> list[str]:
        r = await client.get(url, params=params, headers=admin.headers)
        assert r.status_code == 200, r.text
        return [m["text"] for m in r.json()["items"]]

    all_ = (await client.get(url, headers=admin.headers)).json()["items"]
    ids = [m["id"] for m in all_]
    assert [m["text"] for m in all_] == [f"m{i}" for i in range(7)]
    assert ids == sorted(ids)
    assert await page(after_id=ids[2]) == ["m3", "m4", "m5", "m6"]
    assert await page(after_id=ids[2], limit=2) == ["m3", "m4"]
    assert await page(after_id=ids[-1]) == []
    assert await page(after_id=0) == [f"m{i}" for i in range(7)]
    assert await page(before_id=ids[5], limit=3) == ["m2", "m3", "m4"], "the newest before the id, oldest first"
    assert await page(before_id=ids[0]) == []
    r = await client.get(url, params={"after_id": 1, "before_id": 5}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "conflicting_parameters"

    detail = (await client.get(f"{CONV}/{cid}", params={"limit": 3}, headers=admin.headers)).json()
    assert [m["text"] for m in detail["messages"]] == ["m4", "m5", "m6"]
    assert detail["more_messages_before"] == ids[4]
    assert await page(before_id=detail["more_messages_before"]) == ["m0", "m1", "m2", "m3"]
    assert (await get(client, admin, cid))["more_messages_before"] is None


async def test_messages_of_an_unknown_conversation_are_404(client, admin):
    r = await client.get(f"{CONV}/424242/messages", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "conversation_not_found"


async def test_every_change_leaves_one_transition_row(client, runtime, factory, admin, api_channel):
    agent = await factory.user("agent")
    cid = (await inbound(client, api_channel, "crm-1"))["conversation_id"]
    await assign(client, admin, cid, assignee_id=agent.id, note="yours")
    await status(client, agent, cid, "resolved", reason="answered")
    stored = await rows(runtime, Transition, Transition.conversation_id == cid)
    assert [(t.to_status, t.actor_user_id) for t in stored] == [("queued", None), ("assigned", admin.id),
                                                                ("resolved", agent.id)]
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Transition)) == 3
