"""The company writes first, as agents and integrators meet it: the preferred channel kept current by the
customer's own messages, conversations started by agents under each channel's rules (WhatsApp's 24-hour window
and templates, bots that reach only people who wrote, SMS segments, email subjects), notifications that fall back
from a failed channel to the next, idempotent retries, consent and opt-out words — through the HTTP API, with the
WhatsApp and Twilio fakes on 127.0.0.1 and the test clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select

from kommutator.channels.base import Draft, Reach, Refusal, TemplateUse
from kommutator.channels.registry import get_adapter
from kommutator.channels.text import sms_segments
from kommutator.contacts import preferred
from kommutator.contacts.models import ChannelScore, Consent
from kommutator.contacts.optout import language_of
from kommutator.conversations.models import Conversation, Message
from kommutator.ingest.types import ChannelConfig
from kommutator.outbound.worker import OutreachWorker
from kommutator.subscriptions.worker import subscription_worker_of
from kommutator.workers.outbox import OutboxWorker

from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from .fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, CUSTOMER, PHONE_NUMBER_ID, Answer, FakeWhatsApp
from .test_subscriptions import crm as crm  # the fake CRM that checks signatures (a fixture)
from .test_subscriptions import subscribe

PHONE = f"+{CUSTOMER}"  # the same person by SMS: both channels vouch for the number, so one contact
TG_TOKEN = "123456:" + "A" * 35


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def wa() -> AsyncIterator[FakeWhatsApp]:
    server = FakeWhatsApp()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channels(client, admin, wa, twilio) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    made = {}
    for body in (
        {"type": "whatsapp", "name": "WhatsApp", "settings": {"api_base_url": wa.base_url,
                                                              "phone_number_id": PHONE_NUMBER_ID},
         "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}},
        {"type": "sms", "name": "SMS", "settings": {"api_base_url": twilio.url, "account_sid": ACCOUNT_SID,
                                                    "from_number": FROM_NUMBER, "status_callback": False},
         "credentials": {"auth_token": AUTH_TOKEN}},
        {"type": "telegram", "name": "Shop bot", "settings": {"api_base_url": "http://127.0.0.1:9"},
         "credentials": {"bot_token": TG_TOKEN}},
    ):
        r = await client.post("/api/v1/channels", headers=admin.headers, json=body)
        assert r.status_code == 201, r.text
        made[body["type"]] = r.json()
    sms = made["sms"]  # delivery reports come back to the channel's webhook
    r = await client.patch(f"/api/v1/channels/{sms['id']}", headers=admin.headers, json={"settings": {
        **sms["settings"], "status_callback": True, "webhook_url": sms["webhook_url"]}})
    assert r.status_code == 200, r.text
    return made


@pytest.fixture
async def outbox(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="outbound-test")
    yield w
    await w.stop()


async def wa_in(client: httpx.AsyncClient, wa: FakeWhatsApp, channel: dict[str, Any], text: str) -> None:
    wa.last_customer_message[CUSTOMER] = wa_now()
    r = await wa.deliver(client, f"/webhooks/{channel['id']}", wa.text_payload(f"wamid.{text[:8]}.{wa_now()}", text))
    assert r.status_code == 200, r.text


def wa_now() -> dt.datetime:
    from kommutator.clock import now
    return now()


async def sms_in(client: httpx.AsyncClient, twilio: FakeTwilio, channel: dict[str, Any], text: str) -> None:
    params = twilio.inbound_params(sender=PHONE, to=FROM_NUMBER, body=text)
    r = await twilio.post_signed(client, f"http://testserver/webhooks/{channel['id']}", params)
    assert r.status_code == 200, r.text


async def the_contact(client: httpx.AsyncClient, admin: Any) -> dict[str, Any]:
    items = (await client.get("/api/v1/contacts", headers=admin.headers)).json()["items"]
    assert len(items) == 1, items
    return dict(items[0])


async def resolve_all(runtime: Any, client: httpx.AsyncClient, admin: Any) -> None:
    async with runtime.db.read() as s:
        ids = list((await s.execute(select(Conversation.id).where(Conversation.status != "resolved"))).scalars())
    for conv_id in ids:
        r = await client.post(f"/api/v1/conversations/{conv_id}/status", json={"status": "resolved"},
                              headers=admin.headers)
        assert r.status_code == 200, r.text


# --- Preferred channel ----------------------------------------------------------------------------------------

async def test_the_preferred_channel_follows_recent_messages_and_consent(client, admin, channels, wa, twilio, clock,
                                                                         runtime):
    for text in ("one", "two", "three"):
        await sms_in(client, twilio, channels["sms"], text)
    contact = await the_contact(client, admin)
    assert contact["preferred_channel"] == "sms" and contact["channel_ranking"] == ["sms"]
    clock.tick(60 * 86400)  # two half-lives: the three SMS now weigh 0.75 of one message today
    await wa_in(client, wa, channels["whatsapp"], "hello from whatsapp")
    contact = await the_contact(client, admin)
    assert contact["preferred_channel"] == "whatsapp", contact
    async with runtime.db.read() as s:
        scores = {r.channel_type: r for r in (await s.execute(select(ChannelScore))).scalars()}
    assert scores["sms"].messages == 3 and scores["whatsapp"].messages == 1
    assert scores["whatsapp"].last_at == clock.t and scores["sms"].last_at == clock.t - dt.timedelta(days=60)
    assert contact["channel_ranking"] == ["whatsapp", "sms"]
    r = await client.get("/api/v1/contacts", params={"preferred_channel": "whatsapp"}, headers=admin.headers)
    assert [c["id"] for c in r.json()["items"]] == [contact["id"]]
    r = await client.get("/api/v1/contacts", params={"preferred_channel": "sms"}, headers=admin.headers)
    assert r.json()["items"] == []
    # Refused WhatsApp: it is no longer a candidate.
    r = await client.patch(f"/api/v1/contacts/{contact['id']}", headers=admin.headers,
                           json={"consents": [{"channel_type": "whatsapp", "granted": False}]})
    assert r.status_code == 200 and r.json()["preferred_channel"] == "sms", r.text
    r = await client.get("/api/v1/contacts", params={"preferred_channel": "sms"}, headers=admin.headers)
    assert [c["id"] for c in r.json()["items"]] == [contact["id"]]


@examples(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(st.tuples(st.sampled_from(["sms", "whatsapp", "telegram"]),
                                   st.integers(min_value=0, max_value=3000)), min_size=1, max_size=30),
       later=st.integers(min_value=0, max_value=400))
def test_comparing_stored_sums_is_comparing_decayed_counts(messages, later):
    """The stored score (one addition per message) ranks channels exactly as counting each message with weight
    ½^(age / 30 days) at any later moment would."""
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    stored: dict[str, float] = {}
    for channel, day in messages:
        stored[channel] = stored.get(channel, 0.0) + preferred.weight(start + dt.timedelta(days=day))
    at = start + dt.timedelta(days=max(d for _, d in messages) + later)
    decayed = {c: sum(0.5 ** ((at - (start + dt.timedelta(days=d))) / preferred.HALF_LIFE)
                      for ch, d in messages if ch == c) for c in stored}
    factor = preferred.weight(at)
    for c in stored:
        assert stored[c] / factor == pytest.approx(decayed[c], rel=1e-9)


# --- Each channel's rule, on its adapter --------------------------------------------------------------------------

def _cfg(kind: str) -> ChannelConfig:
    return ChannelConfig(id=1, type=kind, name=kind, settings={}, credentials={}, enabled=True)


def test_each_adapter_states_its_rule_for_a_first_message():
    at = dt.datetime(2031, 3, 1, tzinfo=dt.UTC)
    nobody = Reach(chat_id=None, phone=None, email=None, last_inbound_at=None)
    phone_only = Reach(chat_id=None, phone="+79001234567", email=None, last_inbound_at=None)
    for kind, code in (("telegram", "telegram_never_wrote"), ("vk", "vk_never_wrote"),
                       ("webchat", "webchat_never_wrote")):
        with pytest.raises(Refusal) as caught:
            get_adapter(kind).first_message(_cfg(kind), phone_only, Draft("Hi"), at)
        assert caught.value.code == code and caught.value.ru and caught.value.en
    wrote = Reach("42", None, None, None)
    assert get_adapter("telegram").first_message(_cfg("telegram"), wrote, Draft("Hi"), at) == "42"
    wa = get_adapter("whatsapp")
    with pytest.raises(Refusal, match="24 hours"):
        wa.first_message(_cfg("whatsapp"), phone_only, Draft("Hi"), at)
    assert wa.first_message(_cfg("whatsapp"), phone_only,
                            Draft("Hi", template=TemplateUse("order_shipped", "en")), at) == "79001234567"
    with pytest.raises(Refusal, match="not approved"):
        wa.first_message(_cfg("whatsapp"), phone_only, Draft("Hi", template=TemplateUse("x", "en", approved=False)), at)
    recent = Reach("79001234567", None, None, at - dt.timedelta(hours=23))
    assert wa.first_message(_cfg("whatsapp"), recent, Draft("Hi"), at) == "79001234567"
    with pytest.raises(Refusal) as caught:
        wa.first_message(_cfg("whatsapp"), nobody, Draft("Hi"), at)
    assert caught.value.code == "whatsapp_no_number"
    email = get_adapter("email")
    with_address = Reach(None, None, "ann@example.com", None)
    with pytest.raises(Refusal) as caught:
        email.first_message(_cfg("email"), with_address, Draft("Hi"), at)
    assert caught.value.code == "email_subject_required" and "тема" in caught.value.ru
    assert email.first_message(_cfg("email"), with_address, Draft("Hi", subject="Your order"), at) == "ann@example.com"
    sms = get_adapter("sms")
    assert sms.first_message(_cfg("sms"), phone_only, Draft("Hi"), at) == "+79001234567"
    with pytest.raises(Refusal) as caught:
        sms.first_message(_cfg("sms"), phone_only, Draft("я" * 1601), at)
    assert caught.value.code == "sms_too_long" and caught.value.extra == {"encoding": "UCS-2", "segments": 24}


def test_sms_segments_count_gsm7_and_ucs2_as_phones_do():
    assert sms_segments("a" * 160) == ("GSM-7", 1, 160)
    assert sms_segments("a" * 161) == ("GSM-7", 2, 161)
    assert sms_segments("{" * 80) == ("GSM-7", 1, 160)  # the extension table takes two septets
    assert sms_segments("{" * 81) == ("GSM-7", 2, 162)
    assert sms_segments("я" * 70) == ("UCS-2", 1, 70)
    assert sms_segments("я" * 71) == ("UCS-2", 2, 71)
    assert sms_segments("я" * 134) == ("UCS-2", 2, 134)
    assert sms_segments("я" * 135) == ("UCS-2", 3, 135)
    assert sms_segments("🙂" * 35) == ("UCS-2", 1, 70)


# --- Agents start conversations -------------------------------------------------------------------------------

async def make_contact(client, admin, **fields: Any) -> int:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/contacts", headers=admin.headers, json={"name": "Анна", **fields})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_whatsapp_outside_the_window_needs_an_approved_template(client, admin, channels, wa, outbox, clock,
                                                                      runtime):
    await wa_in(client, wa, channels["whatsapp"], "Где заказ?")
    contact = await the_contact(client, admin)
    await resolve_all(runtime, client, admin)
    clock.tick(25 * 3600)
    start = {"contact_id": contact["id"], "channel": str(channels["whatsapp"]["id"]), "text": "Ваш заказ готов"}
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "whatsapp_template_required", r.text
    assert r.json()["detail"].startswith("The customer has not written on WhatsApp in the last 24 hours")
    r = await client.post("/api/v1/conversations", json=start, headers={**admin.headers, "Accept-Language": "ru-RU"})
    assert r.status_code == 422 and r.json()["detail"].startswith("Клиент не писал в WhatsApp последние 24 часа")
    # Templates are managed in the product (administrators); the body's placeholders are its parameters.
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json={
        "name": "order_ready", "language": "ru", "body": "Заказ {{order}} готов, заберите до {{date}}",
        "parameters": ["order", "date"]})
    assert r.status_code == 201, r.text
    wa.templates[("order_ready", "ru")] = 2
    start = {"contact_id": contact["id"], "channel": "preferred", "template": "order_ready", "language": "ru",
             "parameters": {"order": "A-17"}}
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "template_parameters_missing", r.text
    r = await client.post("/api/v1/conversations", json={**start, "parameters": {
        "order": "A-17", "date": "5 марта", "coupon": "X"}}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "template_parameters_unknown", r.text
    start["parameters"] = {"order": "A-17", "date": "5 марта"}
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 201, r.text
    started = r.json()
    assert started["channel_type"] == "whatsapp"
    await outbox.run_due()
    (sent,) = [c.body for c in wa.sends()]
    assert sent["type"] == "template" and sent["to"] == CUSTOMER
    assert [p["text"] for p in sent["template"]["components"][0]["parameters"]] == ["A-17", "5 марта"]
    conv = (await client.get(f"/api/v1/conversations/{started['conversation_id']}", headers=admin.headers)).json()
    assert conv["status"] == "waiting" and conv["assignee_id"] == admin.id
    shown = [m for m in conv["messages"] if m["direction"] == "out"]
    assert shown[0]["text"] == "Заказ A-17 готов, заберите до 5 марта" and shown[0]["status"] == "sent"
    # The customer answers: the same conversation, back with its agent.
    await wa_in(client, wa, channels["whatsapp"], "Спасибо, заберу")
    conv = (await client.get(f"/api/v1/conversations/{started['conversation_id']}", headers=admin.headers)).json()
    assert conv["status"] == "assigned" and conv["messages"][-1]["text"] == "Спасибо, заберу"
    # One open conversation per customer: a second start says where to write.
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 409 and r.json()["conversation_id"] == started["conversation_id"], r.text


async def test_within_the_window_a_new_conversation_on_whatsapp_goes_as_free_text(client, admin, channels, wa,
                                                                                 outbox, clock, runtime):
    """The window runs from the customer's latest message on the channel, even in an earlier conversation."""
    await wa_in(client, wa, channels["whatsapp"], "Спасибо!")
    contact = await the_contact(client, admin)
    await resolve_all(runtime, client, admin)
    clock.tick(23 * 3600)
    r = await client.post("/api/v1/conversations", headers=admin.headers, json={
        "contact_id": contact["id"], "channel": "preferred", "text": "Как вам покупка?"})
    assert r.status_code == 201 and r.json()["channel_type"] == "whatsapp", r.text
    await outbox.run_due()
    (sent,) = [c.body for c in wa.sends()]
    assert sent["type"] == "text" and sent["text"]["body"] == "Как вам покупка?"


async def test_bots_reach_only_people_who_wrote_and_sms_shows_segments(client, admin, channels, twilio, outbox):
    contact_id = await make_contact(client, admin, phone="+79001234567")
    start = {"contact_id": contact_id, "channel": str(channels["telegram"]["id"]), "text": "Здравствуйте!"}
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "telegram_never_wrote", r.text
    assert "never written to this bot" in r.json()["detail"] and "бот" in r.json()["sentences"]["ru"]
    r = await client.post("/api/v1/conversations", json={**start, "channel": "sms", "text": "я" * 1601},
                          headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "sms_too_long" and r.json()["segments"] == 24, r.text
    # The trailing space is dropped: 83 units, two UCS-2 segments.
    r = await client.post("/api/v1/conversations/preview", json={**start, "channel": "sms", "text": "Привет " * 12},
                          headers=admin.headers)
    assert r.json()["allowed"] and r.json()["measure"] == {"encoding": "UCS-2", "segments": 2, "units": 83}, r.text
    r = await client.post("/api/v1/conversations", json={**start, "channel": "sms"}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["measure"]["encoding"] == "UCS-2", r.text
    await outbox.run_due()
    assert [(m.to, m.body) for m in twilio.messages] == [("+79001234567", "Здравствуйте!")]


async def test_agents_start_only_with_contacts_they_may_see_and_consent_is_respected(client, admin, factory,
                                                                                     channels):
    contact_id = await make_contact(client, admin, phone="+79001234567",
                                    consents=[{"channel_type": "sms", "granted": False}])
    agent = await factory.user("agent")
    start = {"contact_id": contact_id, "channel": "sms", "text": "Hi"}
    r = await client.post("/api/v1/conversations", json=start, headers=agent.headers)
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found", r.text
    r = await client.post("/api/v1/conversations", json=start, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "no_consent", r.text
    r = await client.post("/api/v1/conversations", json={**start, "channel": "preferred"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["code"] == "no_reachable_channel", r.text
    assert {s["code"] for s in r.json()["skipped"]} == {"no_consent", "whatsapp_template_required",
                                                        "telegram_never_wrote"}
    r = await client.post("/api/v1/message-templates", headers=agent.headers, json={
        "name": "x", "language": "en", "body": "x"})
    assert r.status_code == 403


async def test_administrators_manage_templates(client, admin):
    body = {"name": "order_shipped", "language": "en", "body": "Order {{order}} has shipped", "parameters": ["order"]}
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json={**body, "parameters": []})
    assert r.status_code == 422 and r.json()["code"] == "template_placeholders_mismatch", r.text
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    template_id = r.json()["id"]
    r = await client.post("/api/v1/message-templates", headers=admin.headers, json=body)
    assert r.status_code == 409 and r.json()["code"] == "template_exists"
    r = await client.patch(f"/api/v1/message-templates/{template_id}", headers=admin.headers, json={
        "body": "Order {{order}} ships on {{date}}", "parameters": ["order", "date"], "approved": False})
    assert r.status_code == 200 and r.json()["parameters"] == ["order", "date"] and not r.json()["approved"]
    listed = (await client.get("/api/v1/message-templates", headers=admin.headers)).json()["items"]
    assert [t["name"] for t in listed] == ["order_shipped"]
    assert (await client.delete(f"/api/v1/message-templates/{template_id}", headers=admin.headers)).status_code == 204
    assert (await client.get("/api/v1/message-templates", headers=admin.headers)).json()["items"] == []


async def test_templates_are_renamed_and_refused_in_the_callers_language_naming_the_field(client, admin, factory):
    ru = {**admin.headers, "Accept-Language": "ru"}
    made = []
    for name in ("order_shipped", "order_ready"):
        r = await client.post("/api/v1/message-templates", headers=admin.headers, json={
            "name": name, "language": "ru", "body": "Заказ {{order}}", "parameters": ["order"]})
        assert r.status_code == 201, r.text
        made.append(r.json())
    shipped, ready = made
    r = await client.post("/api/v1/message-templates", headers=ru, json={
        "name": "x", "language": "ru", "body": "Заказ {{order}} {{date}}", "parameters": ["order"]})
    assert r.status_code == 422 and r.json()["code"] == "template_placeholders_mismatch", r.text
    assert r.json()["detail"].startswith("Подстановки в тексте (date, order)"), r.text
    assert r.json()["errors"] == [{"field": "parameters", "message": r.json()["detail"]}]
    assert r.json()["sentences"]["en"].startswith("The body's placeholders (date, order)")
    # Renaming onto another template's name and language is a 409 naming the field; to a free one works.
    r = await client.patch(f"/api/v1/message-templates/{ready['id']}", headers=ru, json={"name": "order_shipped"})
    assert r.status_code == 409 and r.json()["code"] == "template_exists", r.text
    assert r.json()["errors"][0]["field"] == "name" and r.json()["template_id"] == shipped["id"]
    assert "уже есть" in r.json()["detail"]
    r = await client.patch(f"/api/v1/message-templates/{ready['id']}", headers=admin.headers,
                           json={"name": "order_shipped", "language": "en", "body": "Order {{order}} is ready"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["language"]) == ("order_shipped", "en"), r.text
    # A change that breaks the placeholders is refused and changes nothing.
    r = await client.patch(f"/api/v1/message-templates/{ready['id']}", headers=admin.headers,
                           json={"body": "Order {{number}} is ready"})
    assert r.status_code == 422 and r.json()["code"] == "template_placeholders_mismatch", r.text
    r = await client.get(f"/api/v1/message-templates/{ready['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["body"] == "Order {{order}} is ready", r.text
    r = await client.patch(f"/api/v1/message-templates/{ready['id']}", headers=admin.headers, json={"name": "Bad Name"})
    assert r.status_code == 422 and r.json()["code"] == "validation_failed", r.text
    assert r.json()["errors"][0]["field"] == "name"
    assert (await client.get("/api/v1/message-templates/999999", headers=admin.headers)).status_code == 404
    agent = await factory.user("agent")
    assert (await client.get(f"/api/v1/message-templates/{ready['id']}", headers=agent.headers)).status_code == 200
    for method in ("PATCH", "DELETE"):
        r = await client.request(method, f"/api/v1/message-templates/{ready['id']}", headers=agent.headers,
                                 **({"json": {"approved": False}} if method == "PATCH" else {}))
        assert r.status_code == 403 and r.json()["code"] == "admin_required", r.text


# --- Notifications ------------------------------------------------------------------------------------------------

async def test_a_failed_whatsapp_notification_falls_back_to_sms_and_reports_each_attempt(
        client, admin, channels, wa, twilio, outbox, runtime, clock, crm):
    await subscribe(client, admin, crm, ["notification.status_changed"])  # the shop's system hears the outcome
    await wa_in(client, wa, channels["whatsapp"], "hi")
    await resolve_all(runtime, client, admin)
    body = {"contact": {"phone": PHONE}, "text": "Your order A-17 has shipped", "channels": ["whatsapp", "sms"]}
    wa.answer(Answer.graph_error(131026, "(#131026) Message undeliverable", "Receiver is incapable"))
    key = {"Idempotency-Key": "order-A-17-shipped"}
    r = await client.post("/api/v1/notifications", json=body, headers={**admin.headers, **key})
    assert r.status_code == 202, r.text
    note = r.json()
    assert note["status"] == "sending" and [a["channel_type"] for a in note["attempts"]] == ["whatsapp"]
    again = await client.post("/api/v1/notifications", json=body, headers={**admin.headers, **key})
    assert again.status_code == 202 and again.json()["id"] == note["id"]  # a retry: the same notification
    await outbox.run_due()
    worker = OutreachWorker(runtime)
    assert await worker.run_due() == 1
    await outbox.run_due()
    await worker.run_due()
    r = await client.get(f"/api/v1/notifications/{note['id']}", headers=admin.headers)
    shown = r.json()
    assert [(a["channel_type"], a["status"]) for a in shown["attempts"]] == [("whatsapp", "failed"), ("sms", "sent")]
    assert "131026" in shown["attempts"][0]["reason"], shown
    assert shown["status"] == "sent"
    assert [(m.to, m.body) for m in twilio.messages] == [(PHONE, "Your order A-17 has shipped")]
    await subscription_worker_of(runtime).run_due()
    (heard,) = crm.received
    assert (heard["type"], heard["data"]["status"], heard["data"]["notification"]["id"]) == \
        ("notification.status_changed", "sent", note["id"])
    r = await twilio.report(client, twilio.messages[0], "delivered")
    assert r.status_code == 200, r.text
    shown = (await client.get(f"/api/v1/notifications/{note['id']}", headers=admin.headers)).json()
    assert shown["status"] == "delivered" and shown["attempts"][1]["status"] == "delivered"
    # The customer answers by SMS: the conversation the notification opened goes to the queue.
    conv_id = shown["attempts"][1]["conversation_id"]
    await sms_in(client, twilio, channels["sms"], "When will it arrive?")
    conv = (await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)).json()
    assert conv["status"] == "queued" and conv["messages"][-1]["text"] == "When will it arrive?"


async def test_notifications_pick_the_preferred_channel_and_respect_marketing_consent(client, admin, channels, wa,
                                                                                       twilio, runtime):
    await sms_in(client, twilio, channels["sms"], "hello")
    contact = await the_contact(client, admin)
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "Sale!", "purpose": "marketing"})
    assert r.status_code == 422 and r.json()["code"] == "no_reachable_channel", r.text
    assert "marketing" in r.json()["detail"]
    r = await client.patch(f"/api/v1/contacts/{contact['id']}", headers=admin.headers, json={
        "consents": [{"channel_type": "sms", "granted": True, "marketing": True}]})
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "Sale!", "purpose": "marketing"})
    assert r.status_code == 202 and r.json()["attempts"][0]["channel_type"] == "sms", r.text
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact": {"email": "nobody@example.com"}, "text": "x"})
    assert r.status_code == 404 and r.json()["code"] == "contact_not_found"
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "x", "template": "y"})
    assert r.status_code == 422
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "x", "channels": ["fax"]})
    assert r.status_code == 422 and r.json()["code"] == "channel_not_found"


# --- Opt-out words ------------------------------------------------------------------------------------------------

def test_opt_out_words_are_whole_messages_in_either_language():
    assert [language_of(t) for t in ("СТОП", "Отписаться!", "stop", " Unsubscribe. ", "stop sending the wrong size",
                                     "стоп-кран")] == ["ru", "ru", "en", "en", None, None]


@pytest.mark.parametrize(("word", "confirmation"), [("СТОП", "Вы отписаны от рассылок"),
                                                    ("unsubscribe", "You are unsubscribed")])
async def test_an_opt_out_word_withdraws_marketing_consent_and_is_confirmed(client, admin, channels, twilio, outbox,
                                                                           runtime, word, confirmation):
    await sms_in(client, twilio, channels["sms"], "hello")
    contact = await the_contact(client, admin)
    await client.patch(f"/api/v1/contacts/{contact['id']}", headers=admin.headers, json={
        "consents": [{"channel_type": "sms", "granted": True, "marketing": True}]})
    await sms_in(client, twilio, channels["sms"], word)
    async with runtime.db.read() as s:
        consent = await s.get(Consent, (contact["id"], "sms"))
        assert consent is not None and consent.granted and not consent.marketing
        out = list((await s.execute(select(Message).where(Message.direction == "out"))).scalars())
    assert len(out) == 1 and out[0].text.startswith(confirmation)
    await outbox.run_due()
    assert twilio.messages[-1].body.startswith(confirmation) and twilio.messages[-1].to == PHONE
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "Sale!", "purpose": "marketing"})
    assert r.status_code == 422
    r = await client.post("/api/v1/notifications", headers=admin.headers, json={
        "contact_id": contact["id"], "text": "Your order shipped"})  # service messages still reach them
    assert r.status_code == 202, r.text
