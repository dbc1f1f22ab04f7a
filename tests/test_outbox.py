"""Agent replies reach the integrator: signed, in order per chat, retried with one webhook-id, never lost,
never sent twice by two workers, never to a private address unless allowed.

The integrator is a real HTTP server on 127.0.0.1 that checks every signature the way the Standard
Webhooks reference library does. Time moves with the test clock; the worker runs when a test calls it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kommutator.channels.base import SendError
from kommutator.channels.types.api.adapter import secret_bytes, signature
from kommutator.clock import now, set_clock
from kommutator.conversations.models import Message
from kommutator.events import Event, MessageStatusChanged
from kommutator.net.guard import OutboundGuard
from kommutator.net.http import GuardedTransport, outbound_client
from kommutator.runtime import Runtime
from kommutator.workers import outbox as outbox_module
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker, RetryPolicy

from .conftest import post_inbound
from .fakes.serving import Served

# --- The fake integrator --------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def text(self) -> str:
        return str(self.json["message"]["text"])


def integrator_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What an integrator runs: headers present, timestamp within 5 minutes, one v1 signature matches."""
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs) or abs(time.time() - int(ts)) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    for versioned in sigs.split(" "):
        version, _, sig = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(expected, base64.b64decode(sig)):
            return True
    return False


class Integrator:
    """A real HTTP server on loopback; answers 200 with an id unless told otherwise (per message text)."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[Received] = []
        self.plans: dict[str | None, list[Answer]] = {}
        self.always: Answer | None = None
        self.url = ""
        self._http = Served()

    def answer(self, *answers: Answer, text: str | None = None) -> None:
        """Queue answers for the next requests (for one message text, or any)."""
        self.plans.setdefault(text, []).extend(answers)

    def _next(self, text: str) -> Answer:
        for key in (text, None):
            if self.plans.get(key):
                return self.plans[key].pop(0)
        return self.always or Answer(200, {"id": f"crm-{len(self.received)}"})

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        got = Received(headers, body, integrator_verifies(self.secret, headers, body))
        self.received.append(got)
        if not got.verified:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        answer = self._next(got.text)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.body is None:
            return Response(status_code=answer.status, headers=answer.headers)
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.url = await self._http.start(app) + "/hook"

    async def stop(self) -> None:
        await self._http.stop()

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]


# --- Fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    current = [now()]
    set_clock(lambda: current[0])
    yield current
    set_clock(None)


@pytest.fixture
async def integrator() -> AsyncIterator[Integrator]:
    fake = Integrator()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channel(client, admin, integrator) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "api", "name": "CRM", "settings": {"outbound_url": integrator.url}})
    assert r.status_code == 201, r.text
    integrator.secret = r.json()["generated_credentials"]["outbound_secret"]
    return r.json()


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="worker-a")
    yield w
    await w.stop()


@pytest.fixture
def status_events(runtime) -> list[MessageStatusChanged]:  # type: ignore[no-untyped-def]
    seen: list[MessageStatusChanged] = []

    async def record(event: Event) -> None:
        assert isinstance(event, MessageStatusChanged)
        seen.append(event)

    runtime.bus.subscribe(record, kinds=(MessageStatusChanged,))
    return seen


async def open_chat(client, channel, contact: str = "crm-42") -> int:  # type: ignore[no-untyped-def]
    r = await post_inbound(client, channel, msg_id=f"in-{contact}", contact=contact, text="Где мой заказ?")
    assert r.status_code == 200, r.text
    return int(r.json()["conversation_id"])


async def reply(client, admin, conversation: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": text},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "queued"
    return dict(r.json())


async def message(runtime: Runtime, message_id: int) -> Message:
    async with runtime.db.read() as s:
        msg = await s.get(Message, message_id)
    assert msg is not None
    return msg


async def item_of(runtime: Runtime, message_id: int) -> OutboxItem:
    async with runtime.db.read() as s:
        item = (await s.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).scalar_one()
    return item


# --- Delivery -------------------------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_test_vector():
    key = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                     b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_reply_is_delivered_signed_and_becomes_sent(client, admin, runtime, channel, integrator, worker,
                                                          status_events, clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "Заказ уже в пути")
    assert await worker.run_due() == 1
    (got,) = integrator.received
    assert got.verified, "the integrator must accept the signature"
    assert got.headers["content-type"] == "application/json"
    assert got.webhook_id.startswith(f"msg_{sent['id']}_")
    assert got.json == {"type": "message.created", "message": {
        "id": sent["id"], "conversation_id": conv, "contact": {"id": "crm-42"}, "text": "Заказ уже в пути",
        "created_at": got.json["message"]["created_at"], "attachments": []}}
    assert dt.datetime.fromisoformat(got.json["message"]["created_at"]) == dt.datetime.fromisoformat(
        sent["created_at"])
    msg = await message(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id, msg.status_reason) == ("sent", "crm-1", "")
    assert msg.status_updated_at == clock[0]
    item = await item_of(runtime, sent["id"])
    assert (item.status, item.attempts, item.claimed_by) == ("done", 1, None)
    assert [(e.message_id, e.status, e.conversation_id) for e in status_events] == [(sent["id"], "sent", conv)]
    shown = (await client.get(f"/api/v1/conversations/{conv}", headers=admin.headers)).json()
    assert shown["messages"][-1]["status"] == "sent"
    assert await worker.run_due() == 0, "a sent item is never sent again"
    assert len(integrator.received) == 1


async def test_attachments_travel_as_metadata_with_a_download_url(client, admin, runtime, channel, integrator,
                                                                  worker, clock):
    conv = await open_chat(client, channel)
    r = await client.post(f"/api/v1/conversations/{conv}/attachments", headers=admin.headers,
                          files={"file": ("invoice.pdf", b"%PDF-1.4", "application/pdf")},
                          data={"text": "Your invoice", "kind": "text"})
    assert r.status_code == 201, r.text
    await worker.run_due()
    (got,) = integrator.received
    (att,) = got.json["message"]["attachments"]
    assert att["filename"] == "invoice.pdf" and att["size"] == 8 and att["content_type"] == "application/pdf"
    assert att["url"] == f"http://testserver/api/v1/attachments/{att['id']}"
    d = await client.get(att["url"].removeprefix("http://testserver"), headers=admin.headers)
    assert d.content == b"%PDF-1.4"


async def test_retries_keep_the_same_webhook_id(client, admin, runtime, channel, integrator, worker, clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    integrator.answer(Answer(500, {"error": "db down"}), Answer(503))
    await worker.run_due()
    item = await item_of(runtime, sent["id"])
    assert (item.status, item.attempts) == ("pending", 1)
    assert "HTTP 500" in item.last_error and "db down" in item.last_error
    assert dt.timedelta(seconds=4) <= item.next_attempt_at - clock[0] <= dt.timedelta(seconds=6), \
        "the first retry comes after about 5 seconds (±20% jitter)"
    assert (await message(runtime, sent["id"])).status == "queued"
    clock[0] += dt.timedelta(seconds=7)
    await worker.run_due()
    clock[0] += dt.timedelta(minutes=1)
    await worker.run_due()
    assert len(integrator.received) == 3
    assert len(set(integrator.ids())) == 1, "every attempt carries the same webhook-id"
    assert all(r.verified for r in integrator.received)
    assert (await message(runtime, sent["id"])).status == "sent"


async def test_retry_after_is_honoured(client, admin, runtime, channel, integrator, worker, clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    integrator.answer(Answer(429, {"error": "slow down"}, headers={"Retry-After": "120"}))
    await worker.run_due()
    assert (await item_of(runtime, sent["id"])).next_attempt_at == clock[0] + dt.timedelta(seconds=120)
    clock[0] += dt.timedelta(seconds=119)
    assert await worker.run_due() == 0
    assert len(integrator.received) == 1
    clock[0] += dt.timedelta(seconds=2)
    assert await worker.run_due() == 1
    assert (await message(runtime, sent["id"])).status == "sent"


async def test_a_slow_integrator_times_out_and_is_retried(client, admin, runtime, channel, integrator, clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    integrator.answer(Answer(200, {"id": "late"}, delay=0.6))
    w = OutboxWorker(runtime, client=outbound_client(runtime.settings, timeout=0.2))
    try:
        await w.run_due()
        item = await item_of(runtime, sent["id"])
        assert item.status == "pending" and "did not answer in time" in item.last_error
        clock[0] += dt.timedelta(seconds=10)
        await w.run_due()
    finally:
        await w.client.aclose()
    assert (await message(runtime, sent["id"])).status == "sent"
    assert len(set(integrator.ids())) == 1


async def test_order_per_chat_is_kept_when_the_first_message_needs_retries(client, admin, runtime, channel,
                                                                           integrator, worker, clock):
    chat_a = await open_chat(client, channel, "a")
    chat_b = await open_chat(client, channel, "b")
    first = await reply(client, admin, chat_a, "a-1")
    second = await reply(client, admin, chat_a, "a-2")
    other = await reply(client, admin, chat_b, "b-1")
    integrator.answer(Answer(503), Answer(503), text="a-1")
    await worker.run_due()
    assert sorted(r.text for r in integrator.received) == ["a-1", "b-1"], \
        "a-2 must wait for a-1; the other chat is not held up"
    assert (await message(runtime, other["id"])).status == "sent"
    clock[0] += dt.timedelta(seconds=10)
    await worker.run_due()
    assert [r.text for r in integrator.received if r.text.startswith("a")] == ["a-1", "a-1"]
    clock[0] += dt.timedelta(minutes=1)
    await worker.run_due()
    assert [r.text for r in integrator.received if r.text.startswith("a")] == ["a-1", "a-1", "a-1", "a-2"]
    assert [(await message(runtime, m["id"])).status for m in (first, second)] == ["sent", "sent"]


async def test_after_the_last_attempt_the_message_fails_with_the_reason(client, admin, runtime, channel,
                                                                        integrator, worker, status_events,
                                                                        clock):
    conv = await open_chat(client, channel)
    doomed = await reply(client, admin, conv, "doomed")
    integrator.always = Answer(500, {"error": "integration broken"})
    await worker.run_due()
    # While retrying, the agent sees why and when the next try is.
    retrying = await message(runtime, doomed["id"])
    assert retrying.status == "queued"
    assert retrying.status_reason.startswith("Delivery attempt 1 of 8 failed:")
    assert "HTTP 500" in retrying.status_reason
    assert "Next try at" in retrying.status_reason
    for _ in range(20):
        clock[0] += dt.timedelta(days=1)
        await worker.run_due()
    assert len(integrator.received) == RetryPolicy().max_attempts == 8
    shown = (await client.get(f"/api/v1/conversations/{conv}", headers=admin.headers)).json()
    msg = next(m for m in shown["messages"] if m["id"] == doomed["id"])
    assert msg["status"] == "failed"
    assert "HTTP 500" in msg["status_reason"] and "integration broken" in msg["status_reason"]
    assert "gave up after 8 attempts" in msg["status_reason"]
    assert [e.status for e in status_events] == ["queued"] * 7 + ["failed"]
    assert (await item_of(runtime, doomed["id"])).status == "failed"
    # A chat is not blocked for ever by a message that failed for good.
    integrator.always = None
    later = await reply(client, admin, conv, "later")
    await worker.run_due()
    assert (await message(runtime, later["id"])).status == "sent"


async def test_a_refusal_fails_at_once(client, admin, runtime, channel, integrator, worker, clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    integrator.answer(Answer(422, {"error": "unknown contact crm-42"}))
    await worker.run_due()
    msg = await message(runtime, sent["id"])
    assert msg.status == "failed" and "HTTP 422" in msg.status_reason and "unknown contact" in msg.status_reason
    assert len(integrator.received) == 1


async def test_a_redirect_is_a_failure_and_is_not_followed(client, admin, runtime, channel, integrator, worker,
                                                           clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    integrator.answer(Answer(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    await worker.run_due()
    msg = await message(runtime, sent["id"])
    assert msg.status == "failed" and "redirect" in msg.status_reason
    assert len(integrator.received) == 1


async def test_410_gone_stops_outbound_on_the_channel_until_an_admin_saves_its_settings(
        client, admin, runtime, channel, integrator, worker, clock):
    conv = await open_chat(client, channel)
    first = await reply(client, admin, conv, "one")
    integrator.answer(Answer(410))
    await worker.run_due()
    msg = await message(runtime, first["id"])
    assert msg.status == "failed" and "410 Gone" in msg.status_reason
    listed = (await client.get(f"/api/v1/channels/{channel['id']}", headers=admin.headers)).json()
    assert "410 Gone" in listed["settings"]["outbound_disabled"]
    audit = (await client.get("/api/v1/audit-log", headers=admin.headers)).json()
    assert any(e["action"] == "channel.outbound_disabled" for e in audit["items"])
    second = await reply(client, admin, conv, "two")
    await worker.run_due()
    assert len(integrator.received) == 1, "nothing is posted to an endpoint that is gone"
    assert "410 Gone" in (await message(runtime, second["id"])).status_reason
    # Saving the settings read back from the API keeps the stop; saving them without it resumes delivery.
    kept = await client.patch(f"/api/v1/channels/{channel['id']}", json={"settings": listed["settings"]},
                              headers=admin.headers)
    assert kept.status_code == 200 and kept.json()["settings"]["outbound_disabled"]
    r = await client.patch(f"/api/v1/channels/{channel['id']}", json={"settings": {"outbound_url": integrator.url}},
                           headers=admin.headers)
    assert r.status_code == 200 and "outbound_disabled" not in r.json()["settings"]
    third = await reply(client, admin, conv, "three")
    await worker.run_due()
    assert (await message(runtime, third["id"])).status == "sent"


async def test_a_channel_without_outbound_url_fails_the_reply(client, admin, runtime, api_channel, worker, clock):
    conv = await open_chat(client, api_channel)
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    msg = await message(runtime, sent["id"])
    assert (msg.status, msg.status_reason) == ("failed", "the channel has no outbound_url")
    assert (await item_of(runtime, sent["id"])).attempts == 1


# --- Crashes and concurrency ----------------------------------------------------------------------------


async def test_a_crash_between_send_and_marking_resends_with_the_same_id_and_marks_once(
        client, admin, runtime, channel, integrator, worker, status_events, clock, monkeypatch):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    real = outbox_module.do_record_outcome
    calls = {"n": 0}

    async def crash_once(tx, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died here")
        return await real(tx, **kw)

    monkeypatch.setattr(outbox_module, "do_record_outcome", crash_once)
    await worker.run_due()
    assert len(integrator.received) == 1
    item = await item_of(runtime, sent["id"])
    assert item.status == "pending" and item.claimed_by == "worker-a"
    assert (await message(runtime, sent["id"])).status == "queued"
    assert await worker.run_due() == 0, "the claim holds until it expires"
    # Another process (a restart) takes the item over once the claim has expired.
    clock[0] += worker.lease + dt.timedelta(seconds=1)
    successor = OutboxWorker(runtime, name="worker-b")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    assert len(integrator.received) == 2 and len(set(integrator.ids())) == 1, \
        "the resend must carry the same webhook-id so that the integrator drops it"
    assert (await message(runtime, sent["id"])).status == "sent"
    assert [e.status for e in status_events] == ["sent"]
    assert await worker.run_due() == 0


async def test_an_outcome_that_cannot_be_recorded_does_not_take_the_others_with_it(
        client, admin, runtime, channel, integrator, worker, status_events, monkeypatch):
    """Outcomes arriving together are written in one transaction; one that fails there is retried alone, so the
    others are recorded and only it stays claimed (sent again with the same id once the claim expires)."""
    chats = [await open_chat(client, channel, f"c{i}") for i in range(3)]
    sent = [await reply(client, admin, conv, f"reply {i}") for i, conv in enumerate(chats)]
    broken = (await item_of(runtime, sent[1]["id"])).id
    real = outbox_module.do_record_outcome

    async def fails_for_one(tx, **kw):  # type: ignore[no-untyped-def]
        if kw["item_id"] == broken:
            raise RuntimeError("this one cannot be written")
        return await real(tx, **kw)

    monkeypatch.setattr(outbox_module, "do_record_outcome", fails_for_one)
    assert await worker.run_due() == 3
    assert len(integrator.received) == 3
    assert [(await message(runtime, m["id"])).status for m in sent] == ["sent", "queued", "sent"]
    item = await item_of(runtime, sent[1]["id"])
    assert item.status == "pending" and item.claimed_by == "worker-a"
    assert sorted(e.message_id for e in status_events) == sorted([sent[0]["id"], sent[2]["id"]])


async def test_two_workers_never_send_one_item_twice(client, admin, runtime, settings, channel, integrator,
                                                     clock):
    chats = [await open_chat(client, channel, f"c{i}") for i in range(12)]
    replies = [await reply(client, admin, conv, f"{conv}-{n}") for n in range(3) for conv in chats]
    integrator.always = Answer(200, {"ok": True}, delay=0.005)
    other = Runtime.build(settings)  # a second process: its own engine, pool and (on SQLite) writer
    await other.db.start()
    workers = [OutboxWorker(runtime, name="one", batch=2), OutboxWorker(other, name="two", batch=2),
               OutboxWorker(runtime, name="three", batch=2)]
    try:
        done = await asyncio.gather(*(w.run_due() for w in workers))
        done = [a + b for a, b in zip(done, await asyncio.gather(*(w.run_due() for w in workers)), strict=True)]
    finally:
        for w in workers:
            await w.stop()
        await other.db.close()
    ids = integrator.ids()
    assert len(ids) == len(set(ids)) == len(replies), "each reply is posted exactly once"
    assert sum(done) == len(replies) and sum(1 for n in done if n) >= 2, f"the workers must share the work: {done}"
    for conv in chats:
        texts = [r.text for r in integrator.received if r.json["message"]["conversation_id"] == conv]
        assert texts == [f"{conv}-{n}" for n in range(3)], "each chat keeps its order"
    async with runtime.db.read() as s:
        statuses = (await s.execute(select(Message.status).where(Message.direction == "out"))).scalars().all()
    assert statuses == ["sent"] * len(replies)


async def test_a_claim_takes_at_most_a_batch_and_one_item_per_chat(client, admin, runtime, channel, clock):
    chats = [await open_chat(client, channel, f"c{i}") for i in range(5)]
    for conv in chats:
        await reply(client, admin, conv, "first")
        await reply(client, admin, conv, "second")
    w = OutboxWorker(runtime, name="claimer", batch=3)
    first = await w.claim()
    assert len(first) == 3, "a claim never takes more than the batch (PostgreSQL could re-run a LIMIT sub-select)"
    second = await w.claim()
    assert len(second) == 2 and not set(first) & set(second)
    assert await w.claim() == [], "the second message of each chat waits for the first"
    async with runtime.db.read() as s:
        claimed = (await s.execute(select(OutboxItem.ordering_key).where(OutboxItem.claimed_by == "claimer"))).all()
    assert len(claimed) == len({k for (k,) in claimed}) == 5
    await w.stop()


# --- Private targets (SSRF) -----------------------------------------------------------------------------


async def test_private_targets_are_refused_without_the_allow_list(client, admin, runtime, channel, integrator,
                                                                  clock):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    strict = runtime.settings.model_copy(update={"outbound_allow_hosts": []})
    w = OutboxWorker(runtime, client=outbound_client(strict))
    try:
        await w.run_due()
    finally:
        await w.client.aclose()
    assert integrator.received == []
    msg = await message(runtime, sent["id"])
    assert msg.status == "failed"
    assert "127.0.0.1" in msg.status_reason and "outbound_allow_hosts" in msg.status_reason


@pytest.mark.parametrize("url", [
    "http://10.1.2.3/hook", "http://192.168.0.10/", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://localhost:9/hook", "http://[fe80::1]/",
])
async def test_guard_refuses_private_loopback_and_link_local_addresses(url):
    reached: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reached.append(str(request.url))
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=GuardedTransport(inner=httpx.MockTransport(handler))) as c:
        with pytest.raises(SendError) as err:
            await c.post(url, content=b"{}")
    assert not err.value.retryable and "outbound_allow_hosts" in err.value.reason
    assert reached == []


async def test_guard_lets_public_and_allowed_targets_through_and_pins_the_checked_address():
    reached: list[tuple[str, str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reached.append((str(request.url), request.headers["host"], request.extensions.get("sni_hostname")))
        return httpx.Response(200)

    guard = GuardedTransport(allow_hosts=["10.0.0.0/8", "LocalHost"], inner=httpx.MockTransport(handler))
    async with httpx.AsyncClient(transport=guard) as c:
        for url in ("https://93.184.216.34/hook", "http://10.20.30.40:8080/x", "http://localhost:1/y"):
            assert (await c.post(url, content=b"{}")).status_code == 200
        with pytest.raises(SendError):
            await c.post("http://192.168.1.1/", content=b"{}")
    assert reached == [("https://93.184.216.34/hook", "93.184.216.34", None),
                       ("http://10.20.30.40:8080/x", "10.20.30.40:8080", None),
                       ("http://127.0.0.1:1/y", "localhost:1", None)], \
        "an allowed name is pinned to its checked address too"


async def test_guard_checks_every_resolved_address_and_pins_the_connection():
    reached: list[tuple[str, str, object]] = []
    answers = {"crm.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "10.0.0.7"]}
    guard = OutboundGuard(resolver=lambda host, port: answers[host])

    def handler(request: httpx.Request) -> httpx.Response:
        reached.append((str(request.url), request.headers["host"], request.extensions.get("sni_hostname")))
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=GuardedTransport(guard=guard, inner=httpx.MockTransport(handler))) as c:
        assert (await c.post("https://crm.example.com/hook", content=b"{}")).status_code == 200
        with pytest.raises(SendError, match=r"10\.0\.0\.7"):
            await c.post("https://rebind.example.com/hook", content=b"{}")
    assert reached == [("https://93.184.216.34/hook", "crm.example.com", "crm.example.com")], \
        "the request goes to the address that was checked, with the name kept for Host and TLS"


async def test_the_background_loop_delivers_and_stops_cleanly(client, admin, runtime, channel, integrator):
    conv = await open_chat(client, channel)
    sent = await reply(client, admin, conv, "hello")
    w = OutboxWorker(runtime, interval=0.01)
    w.start()
    try:
        for _ in range(200):
            if (await message(runtime, sent["id"])).status == "sent":
                break
            await asyncio.sleep(0.01)
    finally:
        await w.stop()
    assert (await message(runtime, sent["id"])).status == "sent"


def test_allow_list_comes_from_the_environment_comma_separated(tmp_path, monkeypatch):
    from kommutator.config import load_settings

    monkeypatch.chdir(tmp_path)
    assert load_settings(data_dir=tmp_path / "d").outbound_allow_hosts == [], "private targets are refused by default"
    monkeypatch.setenv("KOMMUTATOR_OUTBOUND_ALLOW_HOSTS", "crm.internal, 10.0.0.0/8,127.0.0.1")
    assert load_settings(data_dir=tmp_path / "d").outbound_allow_hosts == ["crm.internal", "10.0.0.0/8", "127.0.0.1"]


async def test_sends_leave_at_the_channels_published_rate(client, admin, runtime, channel, integrator, worker,
                                                          monkeypatch):
    """A channel declaring 20 messages/s gets them no faster, whatever the backlog (no 429s to collect)."""
    from kommutator.channels.base import Capabilities
    from kommutator.channels.types.api.adapter import ApiChannel

    monkeypatch.setattr(ApiChannel, "capabilities", Capabilities(max_text_length=20000, messages_per_second=20))
    convs = [await open_chat(client, channel, contact=f"rate{i}") for i in range(10)]
    for conv in convs:
        await reply(client, admin, conv, "paced")
    started = time.monotonic()
    await worker.run_due()
    elapsed = time.monotonic() - started
    assert len(integrator.received) == 10
    assert elapsed >= 9 / 20 * 0.95, elapsed


def test_the_pacer_books_slots_at_the_rate_per_key():
    from kommutator.workers.pacing import Pacer

    t = [100.0]
    pacer = Pacer(clock=lambda: t[0])
    assert [pacer.reserve("chat", 1) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert pacer.reserve("other", 1) == 0.0
    assert pacer.reserve("free", None) == 0.0
    t[0] += 10
    assert pacer.reserve("chat", 1) == 0.0  # a quiet chat starts afresh, no credit piled up
