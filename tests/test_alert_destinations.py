"""Alert destinations are plug-ins: a fake one registered by name gets alerts with no change to the core, the
deliveries are retried on the outbox's schedule, and the signed webhook (Standard Webhooks headers) goes through
the outbound guard. Each delivery is in its reader's language."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kommutator.quality.delivery import AlertDeliveryWorker
from kommutator.quality.destinations import base as destinations
from kommutator.quality.destinations.base import DeliveryError
from kommutator.quality.models import AlertDelivery
from kommutator.runtime import Runtime
from kommutator.workers.retry import RetryPolicy

from .conftest import Actor, Clock, Factory
from .fakes.alert_destination import FakeDestination
from .fakes.serving import Served
from .quality_support import Q, alerts, customer_writes, policy, settle

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@pytest.fixture
def fake() -> Any:
    found = FakeDestination()
    destinations.register(found)
    yield found
    destinations.unregister("fake")


@pytest.fixture
async def desk(client: httpx.AsyncClient, factory: Factory, admin: Actor) -> dict[str, Any]:
    team = await factory.team("Support")
    agent = await factory.user("agent", teams=[team], name="Anna Agent")
    supervisor = await factory.user("supervisor", teams=[team], name="Sergey Supervisor")
    r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return {"team": team, "agent": agent, "supervisor": supervisor, "channel": r.json()}


async def breach(client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any],
                 contact: str) -> None:
    await policy(client, admin, first_response_seconds=60, warn_percent=0)
    await customer_writes(client, desk["channel"], contact)
    await settle(runtime)
    clock.tick(61)
    await settle(runtime)


async def deliveries(rt: Runtime) -> list[AlertDelivery]:
    async with rt.db.read() as s:
        return list((await s.execute(select(AlertDelivery).order_by(AlertDelivery.id))).scalars())


async def test_a_destination_registered_by_name_gets_alerts_retried_on_the_outbox_schedule(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any],
        fake: FakeDestination) -> None:
    sup = desk["supervisor"]
    r = await client.post(f"{Q}/rules", headers=sup.headers, json={
        "team_id": desk["team"], "kind": "sla.breach", "language": "ru",
        "destinations": {"fake": {"room": "ops", "token": "s3cret-token"}}})
    assert r.status_code == 201, r.text
    assert r.json()["destinations"] == {"fake": {"room": "ops", "token_set": True}}
    assert "s3cret-token" not in r.text, "a secret is never read back"
    await breach(client, runtime, clock, admin, desk, "d1")
    (d,) = await deliveries(runtime)
    assert (d.channel, d.target, d.language) == ("fake", "room:ops", "ru")

    fake.failures = [DeliveryError("busy", retry_after=600.0), DeliveryError("still busy")]
    worker = AlertDeliveryWorker(runtime, policy=RetryPolicy(jitter=0))
    assert await worker.run_due() == 1
    (d,) = await deliveries(runtime)
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "busy")
    assert d.next_attempt_at == clock.t + dt.timedelta(seconds=600), "the provider's Retry-After is kept"
    clock.tick(600)
    assert await worker.run_due() == 1
    (d,) = await deliveries(runtime)
    assert d.next_attempt_at == clock.t + dt.timedelta(seconds=25), "the outbox's second wait: 5 s × 5"
    clock.tick(RetryPolicy(jitter=0).delay(2))
    assert await worker.run_due() == 1
    (d,) = await deliveries(runtime)
    assert (d.status, d.attempts) == ("sent", 3)
    ((target, message, token),) = fake.sent
    assert (target, token, message.language) == ("room:ops", "s3cret-token", "ru")
    assert message.title.startswith("Диалог #") and "Conversation" not in message.body, "one language: the rule's"

    # Changing other settings keeps the secret; an empty object removes the destination.
    r = await client.patch(f"{Q}/rules/{r.json()['id']}", headers=sup.headers,
                           json={"destinations": {"fake": {"room": "night"}}})
    assert r.status_code == 200 and r.json()["destinations"]["fake"] == {"room": "night", "token_set": True}
    r = await client.patch(f"{Q}/rules/{r.json()['id']}", headers=sup.headers, json={"destinations": {"fake": {}}})
    assert r.status_code == 200 and r.json()["destinations"] == {}


async def test_unknown_destinations_and_bad_settings_are_refused(client: httpx.AsyncClient, desk: dict[str, Any],
                                                                 fake: FakeDestination) -> None:
    sup = desk["supervisor"]
    for body, code in (({"pager": {"x": 1}}, "unknown_destination"), ({"fake": {"room": ""}}, "validation_failed"),
                       ({"webhook": {"url": "ftp://x.example/", "secret": SECRET}}, "validation_failed"),
                       ({"webhook": {"url": "https://x.example/", "secret": "short"}}, "validation_failed")):
        r = await client.post(f"{Q}/rules", headers=sup.headers,
                              json={"team_id": desk["team"], "kind": "sla.breach", "destinations": body})
        assert (r.status_code, r.json()["code"]) == (422, code), (body, r.text)
    r = await client.post(f"{Q}/rules", headers=sup.headers, json={
        "team_id": desk["team"], "kind": "sla.breach",
        "destinations": {"webhook": {"url": "http://127.0.0.1:9/hook", "secret": SECRET}}})
    assert (r.status_code, r.json()["code"]) == (422, "outbound_target_refused"), "a loopback URL, not allowed"
    r = await client.post(f"{Q}/rules", headers=desk["agent"].headers, json={
        "team_id": desk["team"], "kind": "sla.breach", "destinations": {"fake": {"room": "ops"}}})
    assert (r.status_code, r.json()["code"]) == (403, "supervisor_required")


class Receiver:
    """A chat system's incoming webhook on 127.0.0.1: answers from ``answers`` (status, headers), then 200."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self._http = Served()
        self.url = ""

    async def _hook(self, request: Request) -> JSONResponse:
        self.requests.append((dict(request.headers), await request.body()))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return JSONResponse({"ok": status == 200}, status_code=status, headers=headers)

    async def __aenter__(self) -> Receiver:
        origin = await self._http.start(Starlette(routes=[Route("/hooks/alerts", self._hook, methods=["POST"])]))
        self.url = f"{origin}/hooks/alerts"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


async def test_a_signed_webhook_through_the_guard(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                  admin: Actor, desk: dict[str, Any], receiver: Receiver) -> None:
    sup = desk["supervisor"]
    port = int(receiver.url.split(":")[2].split("/")[0])
    runtime.settings.outbound_allow_hosts = [f"127.0.0.1:{port}"]  # the receiver on loopback, listed as operators do
    r = await client.post(f"{Q}/rules", headers=sup.headers, json={
        "team_id": desk["team"], "kind": "sla.breach", "language": "en",
        "destinations": {"webhook": {"url": receiver.url, "secret": SECRET}}})
    assert r.status_code == 201, r.text
    assert r.json()["destinations"]["webhook"] == {"url": receiver.url, "secret_set": True}
    await breach(client, runtime, clock, admin, desk, "d2")
    [alert] = await alerts(runtime, "sla.breach")
    assert alert.recipients["webhook"] == [receiver.url]

    receiver.answers = [(503, {"Retry-After": "90"})]
    worker = AlertDeliveryWorker(runtime, policy=RetryPolicy(jitter=0))
    assert await worker.run_due() == 1
    (d,) = await deliveries(runtime)
    assert (d.status, d.attempts) == ("pending", 1) and "503" in d.last_error
    assert d.next_attempt_at == clock.t + dt.timedelta(seconds=90)
    clock.tick(90)
    assert await worker.run_due() == 1
    (d,) = await deliveries(runtime)
    assert (d.status, d.attempts) == ("sent", 2)

    (h1, b1), (h2, b2) = receiver.requests
    assert h1["webhook-id"] == h2["webhook-id"] == f"alert-{d.id}", "the same id on a retry: the receiver dedups"
    for headers, body in ((h1, b1), (h2, b2)):
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        mac = hmac.new(base64.b64decode(SECRET[6:]), signed, hashlib.sha256).digest()
        assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
        assert headers["content-type"] == "application/json"
    assert int(h2["webhook-timestamp"]) == int(clock.t.timestamp())
    sent = json.loads(b2)
    assert sent["type"] == "alert.sla.breach" and sent["data"]["alert_id"] == alert.id
    assert sent["data"]["language"] == "en" and sent["text"].startswith(f"Conversation #{alert.conversation_id}")
    assert all(not ("\u0400" <= ch <= "\u04ff") for ch in sent["text"]), "English only, as the rule says"


async def test_a_private_webhook_address_fails_at_send_time_too(client: httpx.AsyncClient, runtime: Runtime,
                                                                clock: Clock, admin: Actor, desk: dict[str, Any],
                                                                receiver: Receiver) -> None:
    """Saved while it was allowed, then the allowance was withdrawn: the guard refuses it when connecting."""
    port = int(receiver.url.split(":")[2].split("/")[0])
    runtime.settings.outbound_allow_hosts = [f"127.0.0.1:{port}"]
    r = await client.post(f"{Q}/rules", headers=desk["supervisor"].headers, json={
        "team_id": desk["team"], "kind": "sla.breach",
        "destinations": {"webhook": {"url": receiver.url, "secret": "a passphrase of twenty-four+"}}})
    assert r.status_code == 201, r.text
    await breach(client, runtime, clock, admin, desk, "d3")
    runtime.settings.outbound_allow_hosts = []
    assert await AlertDeliveryWorker(runtime).run_due() == 1
    (d,) = await deliveries(runtime)
    assert d.status == "failed" and d.last_error.startswith("webhook url: 127.0.0.1 is a loopback address")
    assert receiver.requests == []


async def test_emails_go_in_the_language_of_the_user_behind_the_address(
        client: httpx.AsyncClient, runtime: Runtime, clock: Clock, admin: Actor, desk: dict[str, Any],
        factory: Factory) -> None:
    lead = await factory.user("supervisor", teams=[desk["team"]], name="Lena Lead")
    r = await client.patch(f"/api/v1/users/{lead.id}", json={"locale": "ru"}, headers=lead.headers)
    assert r.status_code == 200, r.text
    r = await client.post(f"{Q}/rules", headers=desk["supervisor"].headers, json={
        "team_id": desk["team"], "kind": "sla.breach", "emails": [lead.email, "night@shop.example"]})
    assert r.status_code == 201, r.text
    await breach(client, runtime, clock, admin, desk, "d4")
    got = {d.target: d.language for d in await deliveries(runtime)}
    assert got == {lead.email: "ru", "night@shop.example": ""}, "a user's own language; else both"
    worker = AlertDeliveryWorker(runtime)
    rows = {d.target: d for d in await deliveries(runtime)}
    [alert] = await alerts(runtime, "sla.breach")
    ru = worker.message(alert, rows[lead.email])
    both = worker.message(alert, rows["night@shop.example"])
    assert "Диалог" in ru.title and "Conversation" not in ru.body
    assert "Conversation" in both.body and "Диалог" in both.body


async def test_the_alert_feed_speaks_its_readers_language(client: httpx.AsyncClient, runtime: Runtime, clock: Clock,
                                                          admin: Actor, desk: dict[str, Any], factory: Factory) -> None:
    ru_lead = await factory.user("supervisor", teams=[desk["team"]], name="Lena Lead")
    r = await client.patch(f"/api/v1/users/{ru_lead.id}", json={"locale": "ru"}, headers=ru_lead.headers)
    assert r.status_code == 200, r.text
    await breach(client, runtime, clock, admin, desk, "d5")
    (ru_alert,) = (await client.get(f"{Q}/alerts", headers=ru_lead.headers)).json()["items"]
    (en_alert,) = (await client.get(f"{Q}/alerts", headers=desk["supervisor"].headers)).json()["items"]
    assert ru_alert["title"].startswith("Диалог #") and "\n" not in ru_alert["body"]
    assert en_alert["title"].startswith("Conversation #") and "Диалог" not in en_alert["body"]
    assert set(en_alert["data"]["texts"]) == {"en", "ru"}, "the screen can follow a language switch"
    r = await client.post(f"{Q}/alerts/{ru_alert['id']}/ack", headers=ru_lead.headers)
    assert r.status_code == 200 and r.json()["title"].startswith("Диалог #")
