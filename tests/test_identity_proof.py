"""A customer proves an email or phone by a one-time code: the bot's ``verify_identity`` step (the code goes by
SMS through the Twilio fake, after the step commits) and the web chat widget's request/confirm endpoints. The right
code links the value to the contact — merging the contact that already had it verified — and a wrong, late or
never-sent code links nothing. Codes are kept only as hashes. An email code goes through the email channel (an
SMTP fake). And merging two contacts folds their open conversations into one timeline, seen through the API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from kommutator.bot.worker import BotWorker, bot_worker_of
from kommutator.contacts.codes import code_matches
from kommutator.contacts.models import Contact, Identity
from kommutator.contacts.proof_models import IdentityProof
from kommutator.conversations.models import Conversation, Message
from kommutator.events import ConversationUpdated, Event
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker

from .bot_helpers import drain
from .conftest import post_inbound
from .fakes.crm import FakeCrm
from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from .test_channel_email import Provider

PHONE = "+79123456789"
FLOW = {
    "name": "Verify", "version": 1, "language_default": "en", "languages": ["en", "ru"], "start": "verify",
    "nodes": {
        "verify": {"type": "verify_identity", "accept": "any", "next": "done", "on_fail": "sorry"},
        "done": {"type": "handoff", "text": {"en": "Connecting you.", "ru": "Соединяю."}},
        "sorry": {"type": "handoff", "text": {"en": "An agent will check.", "ru": "Оператор проверит."}},
    },
}


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channels(client, admin, crm, twilio) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    made = {}
    for body in ({"type": "api", "name": "Website", "settings": {"outbound_url": crm.inbox}},
                 {"type": "sms", "name": "SMS", "settings": {"api_base_url": twilio.url, "account_sid": ACCOUNT_SID,
                                                             "from_number": FROM_NUMBER, "status_callback": False},
                  "credentials": {"auth_token": AUTH_TOKEN}}):
        r = await client.post("/api/v1/channels", headers=admin.headers, json=body)
        assert r.status_code == 201, r.text
        made[body["type"]] = r.json()
    r = await client.post("/api/v1/bot/flows", headers=admin.headers,
                          json={"name": "Verify", "definition": FLOW, "channel_ids": [made["api"]["id"]]})
    assert r.status_code == 201, r.text
    return made


@pytest.fixture
async def workers(runtime, app) -> AsyncIterator[tuple[BotWorker, OutboxWorker]]:  # type: ignore[no-untyped-def]
    bot, outbox = bot_worker_of(runtime), OutboxWorker(runtime, name="proof-tests")
    yield bot, outbox
    await bot.stop()
    await outbox.stop()


class Customer:
    def __init__(self, client: Any, channel: dict[str, Any], workers: Any, crm: FakeCrm, who: str) -> None:
        self.client, self.channel, self.workers, self.crm, self.who, self.n = client, channel, workers, crm, who, 0

    async def say(self, text: str) -> list[str]:
        self.n += 1
        before = len(self.crm.delivered)
        token = self.channel["generated_credentials"]["inbound_token"]
        r = await self.client.post(f"/webhooks/{self.channel['id']}", headers={"Authorization": f"Bearer {token}"},
                                   json={"id": f"{self.who}-{self.n}", "text": text,
                                         "contact": {"id": self.who, "name": "Irina", "language": "en"}})
        assert r.status_code == 200, r.text
        await drain(*self.workers)
        return self.crm.texts()[before:]


def code_in(body: str) -> str:
    found = re.search(r"\b(\d{6})\b", body)
    assert found, body
    return found.group(1)


async def rows(runtime, model, *where):  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return list((await s.execute(select(model).where(*where).order_by(model.id))).scalars())


async def test_the_bot_sends_a_code_by_sms_and_the_right_code_merges_the_contact_that_has_the_phone(
        client, runtime, admin, channels, workers, crm, twilio, clock):
    # Someone wrote by SMS before: the SMS channel vouches for the number, so that contact has it verified.
    params = twilio.inbound_params(sender=PHONE, to=FROM_NUMBER, body="hello")
    r = await twilio.post_signed(client, f"http://testserver/webhooks/{channels['sms']['id']}", params)
    assert r.status_code == 200, r.text
    [sms_contact] = await rows(runtime, Contact)
    me = Customer(client, channels["api"], workers, crm, "site-1")
    assert (await me.say("hi"))[0].startswith("Write your email address or phone number")
    assert await me.say("it is +7 912 345-67-89") == ["I sent a code to +7912***6789. Please type it here (6 digits)."]
    [sent] = twilio.messages
    assert sent.to == PHONE and "Your verification code" in sent.body
    code = code_in(sent.body)
    [proof] = await rows(runtime, IdentityProof)
    assert proof.status == "pending" and proof.value == PHONE and code not in proof.code_hash
    assert code_matches(code, proof.code_hash)
    timeline = await rows(runtime, Message, Message.id == proof.message_id)
    assert code not in timeline[0].text and timeline[0].text.startswith("A verification code was sent to +7912***")
    [item] = await rows(runtime, OutboxItem, OutboxItem.message_id == proof.message_id)
    assert item.status == "done" and "text" not in item.payload, "the code's text is dropped once sent"
    web_contact = (await rows(runtime, Conversation, Conversation.id == proof.conversation_id))[0].contact_id
    assert web_contact != sms_contact.id

    wrong = "000000" if code != "000000" else "111111"
    assert await me.say(wrong) == ["That code is not right. Tries left: 4."]
    assert await me.say(code) == ["Thank you, confirmed: +7912***6789.", "Connecting you."]
    [proof] = await rows(runtime, IdentityProof)
    assert (proof.status, proof.attempts) == ("verified", 2)
    live = await rows(runtime, Contact, Contact.merged_into_id.is_(None))
    assert [c.id for c in live] == [sms_contact.id], "the later contact folded into the one that had the phone"
    idents = await rows(runtime, Identity, Identity.contact_id == sms_contact.id)
    assert {(i.channel_type, i.verified_phone) for i in idents} == {("sms", PHONE), ("api", PHONE)}
    r = await client.get("/api/v1/audit-log", params={"action": "contact.identity_proven"}, headers=admin.headers)
    assert r.status_code == 200, r.text
    [entry] = r.json()["items"]
    assert entry["detail"]["merged"] == web_contact and PHONE not in str(entry["detail"])


async def test_too_many_wrong_codes_link_nothing(client, runtime, channels, workers, crm, twilio, clock):
    me = Customer(client, channels["api"], workers, crm, "site-2")
    await me.say("hi")
    await me.say(PHONE)
    code = code_in(twilio.messages[-1].body)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        assert await me.say(wrong) == [f"That code is not right. Tries left: {left}."]
    assert await me.say(wrong) == ["The address or number could not be confirmed.", "An agent will check."]
    [proof] = await rows(runtime, IdentityProof)
    assert (proof.status, proof.attempts) == ("failed", 5)
    assert not [i for i in await rows(runtime, Identity) if i.verified_phone], "nothing verified, nothing linked"


async def test_an_expired_code_is_refused(client, runtime, channels, workers, crm, twilio, clock):
    me = Customer(client, channels["api"], workers, crm, "site-3")
    await me.say("hi")
    await me.say(PHONE)
    code = code_in(twilio.messages[-1].body)
    clock.tick(11 * 60)
    assert await me.say(code) == ["The code has expired. Write the address or number again and I will send a new one."]
    assert not [i for i in await rows(runtime, Identity) if i.verified_phone]


async def test_no_email_channel_means_no_code_and_a_sentence(client, runtime, channels, workers, crm, twilio, clock):
    me = Customer(client, channels["api"], workers, crm, "site-4")
    await me.say("hi")
    said = await me.say("anna@example.com")
    assert said[-1] == "Codes cannot be sent by email here; give another address or number."
    assert [p.status for p in await rows(runtime, IdentityProof)] == []


async def test_the_widget_asks_for_a_code_and_confirms_it(client, runtime, admin, channels, twilio, clock):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={"type": "webchat", "name": "Site chat"})
    assert r.status_code == 201, r.text
    chat = r.json()["id"]
    r = await client.post(f"/widget/{chat}/session", json={"language": "ru"})
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    r = await client.post(f"/widget/{chat}/verify", json={"value": PHONE}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (409, "proof_needs_conversation"), r.text
    assert r.json()["detail"] == "Сначала напишите нам сообщение, затем подтвердите адрес или номер."
    r = await client.post(f"/widget/{chat}/messages", json={"client_id": "c-000001", "text": "Здравствуйте"},
                          headers=auth)
    assert r.status_code == 200, r.text
    r = await client.post(f"/widget/{chat}/verify", json={"value": "8 912 345"}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (422, "proof_value_invalid"), r.text
    r = await client.post(f"/widget/{chat}/verify/confirm", json={"code": "123456"}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (409, "proof_not_found"), r.text
    r = await client.post(f"/widget/{chat}/verify", json={"value": "+7 (912) 345-67-89", "language": "en"},
                          headers=auth)
    assert r.status_code == 202, r.text
    assert (r.json()["kind"], r.json()["sent_to"]) == ("phone", "+7912***6789")
    await OutboxWorker(runtime, name="widget-proof").run_due()
    code = code_in(twilio.messages[-1].body)
    assert twilio.messages[-1].body.startswith("Your verification code")
    wrong = "000000" if code != "000000" else "111111"
    r = await client.post(f"/widget/{chat}/verify/confirm", json={"code": wrong}, headers=auth)
    assert (r.status_code, r.json()["code"], r.json()["attempts_left"]) == (422, "proof_code_wrong", 4), r.text
    assert r.json()["detail"] == "Код неверный; осталось попыток: 4.", "the visitor's language"
    r = await client.post(f"/widget/{chat}/verify/confirm", json={"code": f"{code[:3]} {code[3:]}"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"verified": True, "kind": "phone", "value": "+7912***6789"}
    [web] = await rows(runtime, Identity, Identity.channel_type == "webchat")
    assert web.verified_phone == PHONE
    idents = await rows(runtime, Identity, Identity.contact_id == web.contact_id)
    assert {(i.channel_type, i.external_id) for i in idents} == {("webchat", web.external_id), ("sms", PHONE)}
    [contact] = await rows(runtime, Contact, Contact.id == web.contact_id)
    assert contact.phone == PHONE
    r = await client.post(f"/widget/{chat}/verify/confirm", json={"code": code}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (409, "proof_not_found"), "a code works once"


async def test_codes_per_value_are_limited_per_hour(client, runtime, admin, channels, twilio, clock):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={"type": "webchat", "name": "Site chat"})
    chat = r.json()["id"]
    auth = {"Authorization": f"Bearer {(await client.post(f'/widget/{chat}/session', json={})).json()['token']}"}
    r = await client.post(f"/widget/{chat}/messages", json={"client_id": "c-000001", "text": "hi"}, headers=auth)
    assert r.status_code == 200, r.text
    for _ in range(5):
        r = await client.post(f"/widget/{chat}/verify", json={"value": PHONE}, headers=auth)
        assert r.status_code == 202, r.text
    r = await client.post(f"/widget/{chat}/verify", json={"value": PHONE}, headers=auth)
    assert (r.status_code, r.json()["code"]) == (429, "proof_rate_limited"), r.text
    statuses = [p.status for p in await rows(runtime, IdentityProof)]
    assert statuses == ["replaced"] * 4 + ["pending"], "a new code replaces the one before"
    clock.tick(3601)
    r = await client.post(f"/widget/{chat}/verify", json={"value": PHONE}, headers=auth)
    assert r.status_code == 202, r.text


async def test_merging_two_contacts_folds_the_later_open_conversation_into_the_earlier(
        client, runtime, admin, factory, channels, clock):
    seen: list[ConversationUpdated] = []

    async def record(event: Event) -> None:
        assert isinstance(event, ConversationUpdated)
        seen.append(event)

    runtime.bus.subscribe(record, kinds=(ConversationUpdated,))
    plain = {"type": "api", "name": "Shop API"}  # no bot on it: the conversations wait for people
    r = await client.post("/api/v1/channels", headers=admin.headers, json=plain)
    assert r.status_code == 201, r.text
    api = r.json()
    for n, (who, text) in enumerate((("anna-1", "my order is late"), ("anna-2", "it is order 12345"))):
        clock.tick(60)
        r = await post_inbound(client, api, msg_id=f"m{n}", contact=who, text=text)
        assert r.status_code == 200, r.text
    convs = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]
    first, second = sorted(convs, key=lambda c: c["id"])
    agent = await factory.user("agent", name="Olga")
    r = await client.post(f"/api/v1/conversations/{second['id']}/assign", headers=admin.headers,
                          json={"assignee_id": agent.id})
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/contacts/{second['contact_id']}/merge", headers=admin.headers,
                          json={"other_id": first["contact_id"]})
    assert r.status_code == 200, r.text
    folded = (await client.get(f"/api/v1/conversations/{second['id']}", headers=admin.headers)).json()
    kept = (await client.get(f"/api/v1/conversations/{first['id']}", headers=admin.headers)).json()
    assert (folded["status"], folded["merged_into_id"]) == ("resolved", first["id"])
    assert (kept["status"], kept["assignee_id"]) == ("assigned", agent.id), "the agent's work carries on"
    r = await client.get(f"/api/v1/conversations/{first['id']}/messages", headers=admin.headers)
    assert r.status_code == 200, r.text
    texts = [m["text"] for m in r.json()["items"] if m["direction"] == "in"]
    assert texts == ["my order is late", "it is order 12345"], "one timeline, in order"
    assert [m for m in seen if m.conversation_id == second["id"]][-1].changes["merged_into"] == first["id"]
    assert [m for m in seen if m.conversation_id == first["id"]][-1].changes["merged_from"] == second["id"]
    codes = [t["reason_code"] for t in folded["transitions"]]
    assert codes[-1] == "merged_into"
    r = await post_inbound(client, api, msg_id="m9", contact="anna-2", text="any news?")
    assert r.json()["conversation_id"] == first["id"], "the customer's next message joins the one kept"


async def test_an_email_code_goes_through_the_email_channel_with_its_own_subject(client, runtime, admin, channels,
                                                                                 clock):
    smtp = Provider()
    await smtp.start()
    try:
        r = await client.post("/api/v1/channels", headers=admin.headers, json={
            "type": "email", "name": "Support mail", "settings": {
                "address": "support@shop.example", "display_name": "Shop", "inbound": ["smtp"],
                "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none"}})
        assert r.status_code == 201, r.text
        r = await client.post("/api/v1/channels", headers=admin.headers, json={"type": "webchat", "name": "Chat"})
        chat = r.json()["id"]
        auth = {"Authorization": f"Bearer {(await client.post(f'/widget/{chat}/session', json={})).json()['token']}"}
        r = await client.post(f"/widget/{chat}/messages", json={"client_id": "c-000001", "text": "hi"}, headers=auth)
        assert r.status_code == 200, r.text
        r = await client.post(f"/widget/{chat}/verify", json={"value": "Anna@Example.com", "language": "ru"},
                              headers=auth)
        assert r.status_code == 202, r.text
        assert (r.json()["kind"], r.json()["sent_to"]) == ("email", "a…@example.com")
        await OutboxWorker(runtime, name="email-proof").run_due()
        [mail] = smtp.delivered
        assert mail.rcpt_tos == ["anna@example.com"]
        assert "Код подтверждения" in mail.message["Subject"]
        code = code_in(mail.message.get_body(("plain",)).get_content())
        r = await client.post(f"/widget/{chat}/verify/confirm", json={"code": code}, headers=auth)
        assert r.status_code == 200, r.text
        [web] = await rows(runtime, Identity, Identity.channel_type == "webchat")
        assert web.verified_email == "anna@example.com"
    finally:
        await smtp.stop()
