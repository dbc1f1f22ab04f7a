"""Campaigns as supervisors and customers meet them: saved segments, one message per contact in their language,
marketing consent, skipped reasons, quiet hours in each contact's time zone, pause / resume / cancel, a crash
mid-campaign that resumes without a second message (provider calls counted on the Twilio fake), replies that
open conversations saying which campaign they answer, and campaign traffic behind agents' replies in the outbox.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from kommutator.channels.base import OutboundMessage
from kommutator.channels.registry import get_adapter
from kommutator.conversations.models import Transition
from kommutator.outbound import campaigns
from kommutator.outbound.campaign_worker import CampaignWorker
from kommutator.outbound.campaigns import fill, next_allowed
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.pacing import Pacer

from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from .test_subscriptions import crm as crm  # the fake CRM that checks signatures (a fixture)

MARKETING = [{"channel_type": "sms", "granted": True, "marketing": True}]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sms(client, admin, twilio) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "sms", "name": "SMS", "settings": {"api_base_url": twilio.url, "account_sid": ACCOUNT_SID,
                                                   "from_number": FROM_NUMBER, "status_callback": False},
        "credentials": {"auth_token": AUTH_TOKEN}})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def outbox(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="campaign-test")
    yield w
    await w.stop()


async def contact(client: httpx.AsyncClient, admin: Any, name: str, phone: str | None, *, language: str = "en",
                  consents: list[dict[str, Any]] | None = None, **attributes: Any) -> int:
    body: dict[str, Any] = {"name": name, "language": language, "attributes": attributes,
                            "consents": MARKETING if consents is None else consents}
    if phone:
        body["phone"] = phone
    r = await client.post("/api/v1/contacts", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def segment(client: httpx.AsyncClient, admin: Any, name: str, **rules: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/segments", headers=admin.headers, json={"name": name, "rules": rules})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def campaign(client: httpx.AsyncClient, admin: Any, segment_ids: list[int], **extra: Any) -> dict[str, Any]:
    body = {"name": "Spring sale", "segment_ids": segment_ids, "channel": "sms", "quiet_from": 0, "quiet_to": 0,
            "texts": {"en": "Hi {{first_name}}! Sale in {{city|your city}}.",
                      "ru": "Здравствуйте, {{first_name}}! Распродажа в {{city|вашем городе}}."}, **extra}
    r = await client.post("/api/v1/campaigns", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def run_all(worker: CampaignWorker, outbox: OutboxWorker) -> None:
    while await worker.run_due(limit=100):
        pass
    await worker.run_due(limit=100)  # notices that nobody is pending: done
    await outbox.run_due()


async def stats(client: httpx.AsyncClient, admin: Any, campaign_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_each_contact_of_the_segments_gets_one_message_in_their_language_with_consent(
        client, admin, sms, twilio, outbox, runtime):
    anna = await contact(client, admin, "Анна Петрова", "+79001110001", language="ru", tier="gold", city="Казани")
    await contact(client, admin, "Bob Stone", "+14155550002", tier="gold")
    await contact(client, admin, "Carl No", "+14155550003", tier="gold", consents=[
        {"channel_type": "sms", "granted": True, "marketing": False}])
    await contact(client, admin, "Dina Nophone", None, tier="silver")
    await contact(client, admin, "Eve Other", "+14155550005", tier="bronze", consents=[])
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    agreed = await segment(client, admin, "Agreed to marketing", consent="marketing")
    assert (gold["count"], agreed["count"]) == (3, 3)
    r = await client.post("/api/v1/segments/count", headers=admin.headers, json={"consent": "marketing",
                                                                                 "language": "ru"})
    assert r.json() == {"count": 1}

    made = await campaign(client, admin, [gold["id"], agreed["id"]])
    assert made["status"] == "draft"
    r = await client.post(f"/api/v1/campaigns/{made['id']}/start", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running" and r.json()["stats"]["targeted"] == 4  # Anna, Bob, Carl, Dina: once
    await run_all(CampaignWorker(runtime), outbox)

    bodies = sorted((m.to, m.body) for m in twilio.messages)
    assert bodies == [("+14155550002", "Hi Bob! Sale in your city."),
                      ("+79001110001", "Здравствуйте, Анна! Распродажа в Казани.")]
    got = await stats(client, admin, made["id"])
    assert got["status"] == "done"
    s = got["stats"]
    assert (s["targeted"], s["sent"], s["skipped"], s["pending"]) == (4, 2, 2, 0)
    assert s["skipped_reasons"] == {"no_consent": 1, "no_reachable_channel": 1}
    assert s["replied"] == 0

    # Anna answers: her message joins the conversation the campaign opened, which says which campaign it answers.
    params = twilio.inbound_params(sender="+79001110001", to=FROM_NUMBER, body="А до какого числа?")
    r = await twilio.post_signed(client, f"http://testserver/webhooks/{sms['id']}", params)
    assert r.status_code == 200, r.text
    assert (await stats(client, admin, made["id"]))["stats"]["replied"] == 1
    r = await client.get(f"/api/v1/campaigns/{made['id']}/recipients?status=queued", headers=admin.headers)
    conv_id = next(i["conversation_id"] for i in r.json()["items"] if i["contact_id"] == anna)
    async with runtime.db.read() as s_:
        reasons = list((await s_.execute(select(Transition.reason).where(Transition.conversation_id == conv_id)))
                       .scalars())
    assert any("campaign «Spring sale»" in (x or "") for x in reasons), reasons
    r = await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] != "waiting"  # the answer woke it for routing


async def test_bad_campaigns_are_refused_with_a_sentence_and_agents_may_not_run_them(client, admin, factory, sms):
    await contact(client, admin, "Bob Stone", "+14155550002", tier="gold")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    nobody = await segment(client, admin, "Nobody", attributes={"tier": "platinum"})

    async def refused(body: dict[str, Any], code: str, lang: str = "en") -> str:
        base = {"name": "X", "segment_ids": [gold["id"]], "texts": {"en": "Hi"}, "channel": "sms"}
        r = await client.post("/api/v1/campaigns", headers={**admin.headers, "Accept-Language": lang},
                              json={**base, **body})
        assert r.status_code == 422, r.text
        assert r.json()["code"] == code, r.text
        return str(r.json()["detail"])

    assert "fax" in await refused({"channel": "fax"}, "channel_not_found")
    assert "Укажите текст" in await refused({"texts": {}}, "campaign_text_required", "ru")
    await refused({"texts": {"en": "Hi {{first_name}}", "ru": "Привет"}}, "campaign_placeholders_mismatch")
    await refused({"template": "order_shipped"}, "template_not_found")
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json={
        "name": "sale", "language": "en", "body": "Sale on {{item}} until {{date}}", "parameters": ["item", "date"]})
    assert r.status_code == 201, r.text
    assert "date" in await refused({"template": "sale", "parameters": {"item": "{{city|shoes}}"}},
                                   "template_parameters_missing")

    empty = await campaign(client, admin, [nobody["id"]])
    r = await client.post(f"/api/v1/campaigns/{empty['id']}/start", headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "campaign_audience_empty", r.text
    lacking = await campaign(client, admin, [gold["id"]], texts={"en": "Hi, see you in {{city}}"})
    r = await client.post(f"/api/v1/campaigns/{lacking['id']}/start", headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "campaign_placeholder_missing", r.text
    assert "1 contacts" in r.json()["detail"] and "{{city|" in r.json()["detail"]

    agent = await factory.user("agent")
    for method, path in (("GET", "/api/v1/campaigns"), ("GET", "/api/v1/segments"),
                         ("POST", f"/api/v1/campaigns/{empty['id']}/start")):
        r = await client.request(method, path, headers=agent.headers)
        assert r.status_code == 403 and r.json()["code"] == "supervisor_required", r.text
    r = await client.post("/api/v1/segments", headers=agent.headers, json={"name": "x", "rules": {}})
    assert r.status_code == 403


async def test_a_draft_is_edited_field_by_field_and_refused_once_started(client, admin, sms):
    await contact(client, admin, "Bob Stone", "+14155550002", tier="gold")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    everyone = await segment(client, admin, "Everyone")
    draft = await campaign(client, admin, [gold["id"]])
    path = f"/api/v1/campaigns/{draft['id']}"
    r = await client.patch(path, headers=admin.headers, json={
        "name": " Summer sale ", "segment_ids": [gold["id"], everyone["id"]], "texts": {"en": "Hi {{first_name}}"},
        "channel": "preferred", "purpose": "service", "starts_at": "2030-06-01T09:00:00Z", "quiet_from": 22,
        "quiet_to": 8, "timezone": "Europe/Moscow", "per_minute": 30})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["name"], got["segment_ids"], got["texts"], got["channel"], got["purpose"]) == (
        "Summer sale", [gold["id"], everyone["id"]], {"en": "Hi {{first_name}}"}, "preferred", "service")
    assert (got["quiet_from"], got["quiet_to"], got["timezone"], got["per_minute"]) == (22, 8, "Europe/Moscow", 30)
    assert got["starts_at"].startswith("2030-06-01T09:00") and got["status"] == "draft"
    # Fields left out keep their values; a template replaces the text and its parameters are checked.
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json={
        "name": "sale", "language": "en", "body": "Sale on {{item}}", "parameters": ["item"]})
    assert r.status_code == 201, r.text
    r = await client.patch(path, headers={**admin.headers, "Accept-Language": "ru"},
                           json={"template": "sale", "texts": {}})
    assert r.status_code == 422 and r.json()["code"] == "template_parameters_missing", r.text
    assert r.json()["errors"][0]["field"] == "parameters" and "item" in r.json()["detail"]
    r = await client.patch(path, headers=admin.headers, json={"template": "sale", "parameters": {"item": "shoes"},
                                                              "texts": {}})
    assert r.status_code == 200 and r.json()["template"] == "sale" and r.json()["texts"] == {}, r.text
    assert r.json()["per_minute"] == 30
    # Removing the template with no text left is refused; with a text it is a text campaign again.
    r = await client.patch(path, headers=admin.headers, json={"template": None})
    assert r.status_code == 422 and r.json()["code"] == "campaign_text_required", r.text
    r = await client.patch(path, headers=admin.headers, json={"template": None, "texts": {"ru": "Привет"}})
    assert r.status_code == 200 and (r.json()["template"], r.json()["parameters"]) == (None, {}), r.text
    for body, code, where in (({"segment_ids": [999999]}, "campaign_segment_not_found", "segment_ids"),
                              ({"channel": "fax"}, "channel_not_found", "channel"),
                              ({"timezone": "Mars/Base"}, "campaign_timezone_unknown", "timezone")):
        r = await client.patch(path, headers=admin.headers, json=body)
        assert r.status_code == 422 and r.json()["code"] == code, r.text
        assert r.json()["errors"][0]["field"] == where
    r = await client.patch(path, headers=admin.headers, json={"per_minute": 0})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "per_minute", r.text
    assert (await stats(client, admin, draft["id"]))["texts"] == {"ru": "Привет"}

    r = await client.patch(path, headers=admin.headers, json={"texts": {"en": "Hi"}, "quiet_from": 0, "quiet_to": 0,
                                                              "starts_at": None})
    assert r.status_code == 200 and r.json()["starts_at"] is None, r.text
    r = await client.post(f"{path}/start", headers=admin.headers)
    assert r.status_code == 200, r.text
    r = await client.patch(path, headers={**admin.headers, "Accept-Language": "ru"}, json={"name": "Late"})
    assert r.status_code == 409 and r.json()["code"] == "campaign_status", r.text
    assert r.json()["detail"] == "Кампания в состоянии «running»; её нельзя изменить."
    r = await client.patch(path, headers=admin.headers, json={"name": "Late"})
    assert r.json()["detail"] == "The campaign is running; it cannot be changed.", r.text
    assert (await stats(client, admin, draft["id"]))["name"] == "Summer sale"
    r = await client.patch("/api/v1/campaigns/999999", headers=admin.headers, json={"name": "x"})
    assert r.status_code == 404, r.text


async def test_agents_may_not_edit_campaigns(client, admin, factory, sms):
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    draft = await campaign(client, admin, [gold["id"]])
    agent = await factory.user("agent")
    r = await client.patch(f"/api/v1/campaigns/{draft['id']}", headers=agent.headers, json={"name": "Mine"})
    assert r.status_code == 403 and r.json()["code"] == "supervisor_required", r.text


async def test_a_crash_mid_campaign_resumes_without_a_second_message(client, admin, sms, twilio, outbox, runtime,
                                                                    monkeypatch):
    phones = [f"+1415555{n:04d}" for n in range(7)]
    for n, phone in enumerate(phones):
        await contact(client, admin, f"Client {n}", phone, tier="gold")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    made = await campaign(client, admin, [gold["id"]])
    r = await client.post(f"/api/v1/campaigns/{made['id']}/start", headers=admin.headers)
    assert r.status_code == 200, r.text

    first = CampaignWorker(runtime)
    assert await first.run_due(limit=3) == 3
    await outbox.run_due()
    assert len(twilio.messages) == 3

    # The process dies while writing the next recipients: the second message of the batch never commits.
    real = campaigns.queue_message
    calls = 0

    async def dying(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise SystemError("killed mid-transaction")
        return await real(*args, **kwargs)

    monkeypatch.setattr(campaigns, "queue_message", dying)
    with pytest.raises(SystemError):
        await first.run_due(limit=3)
    monkeypatch.setattr(campaigns, "queue_message", real)
    assert (await stats(client, admin, made["id"]))["stats"]["pending"] == 4  # the batch rolled back whole

    await run_all(CampaignWorker(runtime), outbox)  # a new process picks up where the rows say
    await outbox.run_due()
    assert sorted(m.to for m in twilio.messages) == sorted(phones)  # seven provider calls, one each
    got = await stats(client, admin, made["id"])
    assert got["status"] == "done" and got["stats"]["sent"] == 7


async def test_pause_resume_and_cancel(client, admin, sms, twilio, outbox, runtime):
    for n in range(6):
        await contact(client, admin, f"Client {n}", f"+1415555{n:04d}", tier="gold")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    made = await campaign(client, admin, [gold["id"]])
    cid = made["id"]
    await client.post(f"/api/v1/campaigns/{cid}/start", headers=admin.headers)
    worker = CampaignWorker(runtime)
    assert await worker.run_due(limit=2) == 2
    r = await client.post(f"/api/v1/campaigns/{cid}/pause", headers=admin.headers)
    assert r.json()["status"] == "paused"
    assert await worker.run_due(limit=2) == 0
    r = await client.post(f"/api/v1/campaigns/{cid}/pause", headers=admin.headers)
    assert r.status_code == 409 and r.json()["code"] == "campaign_status"
    r = await client.post(f"/api/v1/campaigns/{cid}/resume", headers=admin.headers)
    assert r.json()["status"] == "running"
    assert await worker.run_due(limit=2) == 2
    # Four messages written, none sent yet: cancelling withdraws them and the two still pending.
    r = await client.post(f"/api/v1/campaigns/{cid}/cancel", headers=admin.headers)
    assert r.status_code == 200, r.text
    s = r.json()["stats"]
    assert r.json()["status"] == "cancelled" and (s["cancelled"], s["failed"], s["queued"]) == (2, 4, 0)
    await outbox.run_due()
    await worker.run_due(limit=10)
    assert twilio.messages == []


async def test_quiet_hours_follow_each_contact_time_zone(client, admin, sms, twilio, outbox, runtime, clock):
    clock.t = dt.datetime(2031, 3, 1, 22, 0, tzinfo=dt.UTC)  # 07:00 in Tokyo, 17:00 in New York
    await contact(client, admin, "Kenji", "+14155550001", tier="gold", timezone="Asia/Tokyo")
    await contact(client, admin, "Nora", "+14155550002", tier="gold", timezone="America/New_York")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    made = await campaign(client, admin, [gold["id"]], quiet_from=21, quiet_to=9)
    await client.post(f"/api/v1/campaigns/{made['id']}/start", headers=admin.headers)
    worker = CampaignWorker(runtime)
    await worker.run_due(limit=10)
    await outbox.run_due()
    assert [m.to for m in twilio.messages] == ["+14155550002"]
    r = await client.get(f"/api/v1/campaigns/{made['id']}/recipients?status=pending", headers=admin.headers)
    [kenji] = r.json()["items"]
    assert dt.datetime.fromisoformat(kenji["due_at"]) == dt.datetime(2031, 3, 2, 0, 0, tzinfo=dt.UTC)  # 9:00 Tokyo
    clock.tick(3600 * 2)
    await worker.run_due(limit=10)
    await outbox.run_due()
    assert sorted(m.to for m in twilio.messages) == ["+14155550001", "+14155550002"]


@given(st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1)),
       st.sampled_from(["UTC", "Europe/Moscow", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
       st.integers(0, 23), st.integers(0, 23))
def test_the_next_allowed_time_is_outside_the_quiet_hours_and_within_a_day(at, tz_name, quiet_from, quiet_to):
    at = at.replace(tzinfo=dt.UTC)
    tz = zoneinfo.ZoneInfo(tz_name)
    got = next_allowed(at, tz, quiet_from, quiet_to)
    assert at <= got <= at + dt.timedelta(hours=26)
    h = got.astimezone(tz).hour
    quiet = (h >= quiet_from or h < quiet_to) if quiet_from > quiet_to else quiet_from <= h < quiet_to
    assert not quiet


def test_placeholders_fill_from_the_contact_with_defaults() -> None:
    class C:
        name, email, phone, attributes = "Анна Петрова", None, "+7900", {"city": "Казани", "n": 3}

    text = fill("{{first_name}}, {{city}} {{n}} {{zip|—}} {{ name }}", C())  # type: ignore[arg-type]
    assert text == "Анна, Казани 3 — Анна Петрова"


async def test_agents_replies_are_claimed_before_campaign_traffic(client, admin, sms, outbox, runtime):
    for n in range(5):
        await contact(client, admin, f"Client {n}", f"+1415555{n:04d}", tier="gold")
    gold = await segment(client, admin, "Gold", attributes={"tier": "gold"})
    made = await campaign(client, admin, [gold["id"]])
    await client.post(f"/api/v1/campaigns/{made['id']}/start", headers=admin.headers)
    await CampaignWorker(runtime).run_due(limit=10)
    someone = await contact(client, admin, "Waiting customer", "+79990000000", consents=[])
    r = await client.post("/api/v1/conversations", headers=admin.headers, json={
        "contact_id": someone, "channel": str(sms["id"]), "text": "Your order is ready"})
    assert r.status_code == 201, r.text
    worker = OutboxWorker(runtime, name="priority-test", batch=10, bulk_batch=2)
    claimed = await worker.claim()
    assert len(claimed) == 3  # every due reply, and at most bulk_batch campaign items a round
    work = await worker._load(claimed)
    assert work[0].message is not None and work[0].message.id == r.json()["message_id"]  # first pacing slot
    async with runtime.db.read() as s:
        priorities = [p for (p,) in (await s.execute(
            select(OutboxItem.priority).where(OutboxItem.id.in_(claimed)).order_by(OutboxItem.id))).all()]
    assert sorted(priorities) == [0, 1, 1]


def test_split_messages_book_a_pacing_slot_per_call() -> None:
    t = [100.0]
    pacer = Pacer(clock=lambda: t[0])
    assert pacer.reserve("chat:1", 1.0, 3) == 0  # three parts of one message: now, +1 s, +2 s
    assert pacer.reserve("chat:1", 1.0) == 3.0  # the next message waits for all of them
    assert pacer.reserve("channel:1", 30.0) == 0 and pacer.reserve("channel:1", 30.0) == pytest.approx(1 / 30)
    # After a stall, slots booked in advance fall due together: they leave at least half a slot apart, and at
    # most the rate in any sliding second.
    assert pacer.admit("channel:2", 3.0) == 0
    assert pacer.admit("channel:2", 3.0) == pytest.approx(0.5 / 3)
    for _ in range(2):
        t[0] += 0.2
        assert pacer.admit("channel:2", 3.0) == 0
    t[0] += 0.2
    assert pacer.admit("channel:2", 3.0) == pytest.approx(0.4)  # the first of the three leaves the second
    t[0] += 0.4
    assert pacer.admit("channel:2", 3.0) == 0
    long = OutboundMessage(id=1, idempotency_key="k", conversation_id=1, to="42", text="word " * 1500, kind="text",
                           created_at=dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
    assert get_adapter("telegram").calls(long) == 2  # 7500 characters: two Telegram messages of at most 4096
    assert get_adapter("sms").calls(long) == 1


async def test_a_crm_hears_each_status_of_a_campaign_in_order(client, admin, sms, outbox, runtime, crm):
    from kommutator.subscriptions.worker import subscription_worker_of

    from .test_subscriptions import subscribe

    await subscribe(client, admin, crm, ["campaign.status_changed"])
    for n in range(3):
        await contact(client, admin, f"Client {n}", f"+1415556{n:04d}", tier="silver")
    silver = await segment(client, admin, "Silver", attributes={"tier": "silver"})
    cid = (await campaign(client, admin, [silver["id"]]))["id"]
    for step in ("start", "pause", "resume", "cancel"):
        r = await client.post(f"/api/v1/campaigns/{cid}/{step}", headers=admin.headers)
        assert r.status_code == 200, r.text
    await subscription_worker_of(runtime).run_due()
    assert crm.bad_signatures == 0
    assert [(b["type"], b["data"]["status"]) for b in crm.received] == [
        ("campaign.status_changed", "running"), ("campaign.status_changed", "paused"),
        ("campaign.status_changed", "running"), ("campaign.status_changed", "cancelled")]
    last = crm.received[-1]["data"]["campaign"]
    assert last["name"] == "Spring sale" and last["status"] == "cancelled" and last["recipients"] == {"cancelled": 3}
