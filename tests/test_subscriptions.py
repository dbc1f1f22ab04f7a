"""Event subscriptions as an integrator meets them: a fake CRM on loopback that checks every Standard Webhooks
signature receives each event type of a conversation's life in order; failures are retried with backoff for
more than a day, then the subscription is turned off and administrators are told in their language; the log
shows every attempt and replays one; a rolled-back change sends nothing and a sender that died mid-send loses
nothing."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kommutator.common import webhook_signing as signing
from kommutator.db import Tx
from kommutator.events import ConversationUpdated, RatingRecorded
from kommutator.notifications.models import Notification
from kommutator.quality.alerts import do_raise_alert
from kommutator.runtime import Runtime
from kommutator.subscriptions.catalogue import TYPES, public_events
from kommutator.subscriptions.models import Delivery
from kommutator.subscriptions.worker import POLICY, subscription_worker_of

from .conftest import Actor, Clock, Factory, post_inbound
from .fakes.serving import Served

SUBS = "/api/v1/subscriptions"
CONV = "/api/v1/conversations"
_ids = itertools.count(1)


class FakeCrm:
    """A receiver that verifies each request's signature with the secret it was given, keeps what it got and
    answers what the test tells it to (by default 200)."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.bad_signatures = 0
        self.answers: list[tuple[int, dict[str, str]]] = []  # next answers, in order; then 200
        self.fail_all: int | None = None
        self._served = Served()
        self.url = ""

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        h = request.headers
        if not self.secret or not signing.verify(self.secret, h["webhook-id"], h["webhook-timestamp"], body,
                                                 h["webhook-signature"]):
            self.bad_signatures += 1
            return Response(status_code=401)
        if self.fail_all is not None:
            return Response(status_code=self.fail_all)
        if self.answers:
            status, headers = self.answers.pop(0)
            if status >= 300:
                return Response(status_code=status, headers=headers)
        self.received.append(json.loads(body))
        self.headers.append(dict(h))
        return JSONResponse({"ok": True})

    async def start(self) -> None:
        self.url = await self._served.start(Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])]))

    async def stop(self) -> None:
        await self._served.stop()

    def types(self) -> list[str]:
        return [b["type"] for b in self.received]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]  # the fake CRM is on loopback
    return settings


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


async def subscribe(client: httpx.AsyncClient, admin: Actor, crm: FakeCrm, types: list[str]) -> dict[str, Any]:
    r = await client.post(SUBS, json={"name": "CRM", "url": f"{crm.url}/hooks", "event_types": types},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["secret"].startswith("whsec_")
    crm.secret = body["secret"]
    return dict(body)


async def customer_writes(client: httpx.AsyncClient, channel: dict[str, Any], contact: str, text: str) -> int:
    r = await post_inbound(client, channel, msg_id=f"s-{next(_ids)}", contact=contact, text=text)
    assert r.status_code == 200, r.text
    return int(r.json()["conversation_id"])


async def deliver(rt: Runtime) -> int:
    return await subscription_worker_of(rt).run_due()


async def test_a_conversations_life_reaches_the_crm_signed_and_in_order(
        client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor,
        api_channel: dict[str, Any], crm: FakeCrm) -> None:
    team = await factory.team("Support")
    anna = await factory.user("agent", teams=[team], name="Anna")
    boris = await factory.user("agent", teams=[team], name="Boris")
    await subscribe(client, admin, crm, list(TYPES))

    cid = await customer_writes(client, api_channel, "crm-42", "Где мой заказ 12345?")
    r = await client.post(f"{CONV}/{cid}/assign", json={"assignee_id": anna.id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{CONV}/{cid}/messages", json={"text": "Смотрю, минуту"}, headers=anna.headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{CONV}/{cid}/messages", json={"text": "VIP, be nice", "kind": "note"},
                          headers=anna.headers)
    assert r.status_code == 201, r.text
    r = await client.post(f"{CONV}/{cid}/assign", json={"assignee_id": boris.id}, headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{CONV}/{cid}/status", json={"status": "resolved"}, headers=boris.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{CONV}/{cid}/status", json={"status": "open"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    contact_id = (await client.get(f"{CONV}/{cid}", headers=admin.headers)).json()["contact_id"]
    r = await client.patch(f"/api/v1/contacts/{contact_id}", json={"email": "buyer@example.com"},
                           headers=admin.headers)
    assert r.status_code == 200, r.text
    await runtime.db.write(lambda tx: do_raise_alert(tx, kind="sla.breach", title="First response missed",
                                                     conversation_id=cid, team_id=team, agent_id=boris.id,
                                                     data={"target": "first_response"}))

    assert await deliver(runtime) > 0
    assert crm.bad_signatures == 0
    mine = [b for b in crm.received if b["data"].get("conversation_id") == cid
            or b["data"].get("contact_id") == contact_id]
    types = [b["type"] for b in mine]
    conv_types = [t for t in types if not t.startswith("contact.")]
    assert conv_types[:2] == ["conversation.created", "message.created"], types
    order = ["conversation.created", "conversation.assigned", "conversation.transferred",
             "conversation.resolved", "conversation.reopened", "sla.breached"]
    assert [t for t in types if t in order] == order, types
    assert types.count("message.created") == 2, "the private note stays inside"
    assert "contact.updated" in types and "contact.created" in types

    first = next(b for b in mine if b["type"] == "message.created")["data"]
    assert first["message"]["text"] == "Где мой заказ 12345?" and first["message"]["direction"] == "in"
    assert first["contact"]["identities"][0]["external_id"] == "crm-42"
    transferred = next(b for b in mine if b["type"] == "conversation.transferred")["data"]
    assert (transferred["from_assignee_id"], transferred["to_assignee_id"]) == (anna.id, boris.id)
    breach = next(b for b in mine if b["type"] == "sla.breached")["data"]
    assert breach["alert"]["title"] == "First response missed" and breach["target"] == "first_response"
    ids = [h["webhook-id"] for h in crm.headers]
    assert len(set(ids)) == len(ids) and all(i.startswith("msg_") for i in ids)
    assert await deliver(runtime) == 0, "each event is sent once"


def test_the_bot_finishing_and_a_rating_are_public_events() -> None:
    handoff = ConversationUpdated(conversation_id=7, team_id=1, assignee_id=None, status="queued",
                                  changes={"status": ["bot", "queued"]})
    assert [(p.type, p.data["outcome"]) for p in public_events(handoff)] == [("bot.session_finished", "handoff")]
    solved = ConversationUpdated(conversation_id=7, team_id=1, assignee_id=None, status="resolved",
                                 changes={"status": ["bot", "resolved"], "resolved_by": "bot"})
    assert [p.type for p in public_events(solved)] == ["bot.session_finished", "conversation.resolved"]
    rated = RatingRecorded(conversation_id=7, team_id=1, assignee_id=3, rating_id=9, contact_id=4, score=2,
                           comment="долго")
    (p,) = public_events(rated)
    assert (p.type, p.order_key, p.data["score"], p.data["comment"]) == ("rating.created", "conversation:7", 2,
                                                                         "долго")


async def test_a_failing_receiver_is_retried_for_a_day_then_turned_off_and_admins_told(
        client: httpx.AsyncClient, runtime: Runtime, factory: Factory, admin: Actor, clock: Clock,
        api_channel: dict[str, Any], crm: FakeCrm) -> None:
    ru_admin = await factory.user("admin", name="Ольга")
    r = await client.patch(f"/api/v1/users/{ru_admin.id}", json={"locale": "ru"}, headers=ru_admin.headers)
    assert r.status_code == 200, r.text
    sub = await subscribe(client, admin, crm, ["message.created"])
    crm.fail_all = 500
    started = clock.t
    await customer_writes(client, api_channel, "c-1", "первое")
    attempts = 0
    while attempts < POLICY.max_attempts:
        sent = await deliver(runtime)
        attempts += sent
        clock.tick(9 * 3600)
        assert attempts <= POLICY.max_attempts
    r = await client.get(f"{SUBS}/{sub['id']}", headers=admin.headers)
    body = r.json()
    assert body["enabled"] is False and body["disabled_reason"] == "failing" and body["failed"] == 1
    async with runtime.db.read() as s:
        d = (await s.execute(select(Delivery))).scalar_one()
        notes = (await s.execute(select(Notification.user_id, Notification.title)
                                 .where(Notification.kind == "subscription.disabled"))).all()
    assert d.attempts == POLICY.max_attempts and d.status == "failed"
    # every attempt is in the log, and they spread over more than a day
    r = await client.get(f"{SUBS}/{sub['id']}/deliveries/{d.id}", headers=admin.headers)
    log = r.json()["attempt_log"]
    assert len(log) == POLICY.max_attempts and all(a["status_code"] == 500 for a in log)
    first, last = (dt.datetime.fromisoformat(log[i]["at"].replace("Z", "+00:00")) for i in (0, -1))
    assert last - first > dt.timedelta(hours=24) and first >= started
    titles = dict(notes)
    assert titles[ru_admin.id] == "Подписка на события «CRM» отключена"
    assert titles[admin.id] == "Event subscription “CRM” was turned off"

    # Turned off, nothing more is journaled; on again with the receiver fixed, the replay goes through.
    await customer_writes(client, api_channel, "c-1", "второе, пока подписка выключена")
    crm.fail_all = None
    r = await client.patch(f"{SUBS}/{sub['id']}", json={"enabled": True}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["disabled_reason"] == ""
    r = await client.post(f"{SUBS}/{sub['id']}/deliveries/{d.id}/replay", headers=admin.headers)
    assert r.status_code == 200, r.text
    await deliver(runtime)
    assert [b["data"]["message"]["text"] for b in crm.received] == ["первое"]
    assert crm.headers[0]["webhook-id"] == d.event_id, "a replay keeps the event's id"


async def test_one_conversation_waits_for_its_failed_event_others_go_on(
        client: httpx.AsyncClient, runtime: Runtime, admin: Actor, clock: Clock, api_channel: dict[str, Any],
        crm: FakeCrm) -> None:
    await subscribe(client, admin, crm, ["message.created"])
    a = await customer_writes(client, api_channel, "a", "A1")
    await customer_writes(client, api_channel, "a", "A2")
    b = await customer_writes(client, api_channel, "b", "B1")
    assert a != b
    crm.answers = [(503, {"Retry-After": "120"})]  # the first attempt (A1) is refused
    await deliver(runtime)
    assert [x["data"]["message"]["text"] for x in crm.received] == ["B1"], "A2 waits behind A1"
    clock.tick(60)
    await deliver(runtime)
    assert len(crm.received) == 1, "Retry-After is honoured"
    clock.tick(61)
    await deliver(runtime)
    assert [x["data"]["message"]["text"] for x in crm.received] == ["B1", "A1", "A2"]


async def test_a_rolled_back_change_sends_nothing_and_a_dead_sender_loses_nothing(
        client: httpx.AsyncClient, runtime: Runtime, admin: Actor, clock: Clock, api_channel: dict[str, Any],
        crm: FakeCrm) -> None:
    await subscribe(client, admin, crm, ["rating.created", "message.created"])

    async def failing(tx: Tx) -> None:
        tx.publish(RatingRecorded(conversation_id=1, team_id=None, assignee_id=None, rating_id=1, contact_id=1,
                                  score=5))
        raise RuntimeError("the change fails after its event was recorded")

    with pytest.raises(RuntimeError):
        await runtime.db.write(failing)
    async with runtime.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Delivery)) == 0

    await customer_writes(client, api_channel, "c", "hello")
    worker = subscription_worker_of(runtime)
    claimed = await worker.claim()  # the process dies right after claiming: nothing is sent
    assert len(claimed) == 1 and crm.received == []
    assert await deliver(runtime) == 0, "still leased to the dead sender"
    clock.tick(121)
    assert await deliver(runtime) == 1
    assert [x["type"] for x in crm.received] == ["message.created"]


async def test_bad_input_and_who_may(client: httpx.AsyncClient, runtime: Runtime, factory: Factory,
                                     admin: Actor, crm: FakeCrm) -> None:
    r = await client.post(SUBS, json={"name": "x", "url": f"{crm.url}/hooks", "event_types": ["order.shipped"]},
                          headers=admin.headers)
    assert r.status_code == 422 and "order.shipped" in r.json()["detail"]
    runtime.settings.outbound_allow_hosts = []
    r = await client.post(SUBS, json={"name": "x", "url": "http://169.254.169.254/latest", "event_types":
                                      ["message.created"]}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "outbound_target_refused"
    r = await client.post(SUBS, json={"name": "x", "url": "ftp://crm.example/x", "event_types":
                                      ["message.created"]}, headers=admin.headers)
    assert r.status_code == 422
    supervisor = await factory.user("supervisor")
    r = await client.get(SUBS, headers=supervisor.headers)
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    r = await client.get(f"{SUBS}/event-types", headers=admin.headers)
    assert {t["type"] for t in r.json()} == set(TYPES) and all(t["description_ru"] for t in r.json())


async def test_test_event_and_a_rotated_secret(client: httpx.AsyncClient, admin: Actor, crm: FakeCrm) -> None:
    sub = await subscribe(client, admin, crm, ["message.created"])
    r = await client.post(f"{SUBS}/{sub['id']}/test", headers=admin.headers)
    assert r.json()["ok"] is True and crm.types() == ["subscription.test"]
    r = await client.post(f"{SUBS}/{sub['id']}/rotate-secret", headers=admin.headers)
    new = r.json()["secret"]
    assert new != crm.secret
    r = await client.post(f"{SUBS}/{sub['id']}/test", headers=admin.headers)
    assert r.json() == {"ok": False, "status_code": 401, "error": "HTTP 401", "duration_ms": r.json()["duration_ms"]}
    crm.secret = new
    r = await client.post(f"{SUBS}/{sub['id']}/test", headers=admin.headers)
    assert r.json()["ok"] is True
    r = await client.get(SUBS, headers=admin.headers)
    assert "secret" not in r.json()[0] and "secret_encrypted" not in r.json()[0]


async def test_every_event_type_reaches_a_subscriber(client: httpx.AsyncClient, runtime: Runtime, admin: Actor,
                                                     crm: FakeCrm) -> None:
    """The domain events behind each public type, recorded on a transaction as the product's actions record them:
    each type in the catalogue is delivered, signed, with its own order key."""
    from kommutator.events import (
        AlertRaised,
        CampaignStatusChanged,
        ContactChanged,
        ConversationCreated,
        MessageCreated,
        MessageStatusChanged,
        NotificationStatusChanged,
    )

    await subscribe(client, admin, crm, list(TYPES))
    c = {"conversation_id": 9, "team_id": None}
    events = [
        ConversationCreated(**c, assignee_id=None, contact_id=4, status="bot"),
        ConversationUpdated(**c, assignee_id=None, status="queued", changes={"status": ["bot", "queued"]}),
        ConversationUpdated(**c, assignee_id=2, status="assigned", changes={"assignee_id": [None, 2]}),
        ConversationUpdated(**c, assignee_id=3, status="assigned", changes={"assignee_id": [2, 3]}),
        ConversationUpdated(**c, assignee_id=None, status="queued", changes={"assignee_id": [3, None]}),
        ConversationUpdated(**c, assignee_id=None, status="resolved", changes={"status": ["queued", "resolved"]}),
        ConversationUpdated(**c, assignee_id=None, status="open", changes={"status": ["resolved", "open"]}),
        MessageCreated(**c, assignee_id=None, message_id=5),
        MessageStatusChanged(**c, assignee_id=None, message_id=6, status="delivered"),
        RatingRecorded(**c, assignee_id=None, rating_id=1, contact_id=4, score=5),
        ContactChanged(contact_id=4, action="created"), ContactChanged(contact_id=4, action="updated"),
        ContactChanged(contact_id=8, action="merged", merged_into=4), ContactChanged(contact_id=4, action="deleted"),
        AlertRaised(alert_id=1, alert_kind="sla.breach", conversation_id=9, target="first_response"),
        AlertRaised(alert_id=2, alert_kind="csat.negative", conversation_id=9),
        NotificationStatusChanged(notification_id=3, contact_id=4, status="sent"),
        CampaignStatusChanged(campaign_id=2, status="running"),
    ]

    async def record(tx: Tx) -> None:
        for event in events:
            tx.publish(event)

    await runtime.db.write(record)
    while await deliver(runtime):
        pass
    assert crm.bad_signatures == 0
    assert set(crm.types()) == set(TYPES), set(TYPES) - set(crm.types())
    # the subjects are gone (made up for the test): each body says so instead of inventing them
    created = next(b for b in crm.received if b["type"] == "conversation.created")
    assert created["data"]["conversation"] == {"id": 9, "deleted": True}
