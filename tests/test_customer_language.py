"""A customer is written to in their own language on every channel: the contact's language comes from the
channel's hint (Telegram's language_code, VK's lang_id, the API channel's contact.language), else from what
they write (Cyrillic or Latin), an agent's explicit choice wins, and one short message does not flip it.

Each channel test drives the channel's real webhook (or SMTP, or the widget's API) with the provider fakes of
tests/fakes, on a closed team: the out-of-hours notice routing writes must be in the customer's language.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kommutator.channels.host import Host
from kommutator.channels.types.email import SmtpListener
from kommutator.common.language import detect, follow
from kommutator.routing.service import router_of
from kommutator.runtime import Runtime

from .conftest import Actor, post_inbound
from .fakes.telegram import TOKEN as TG_TOKEN
from .fakes.telegram import FakeTelegram
from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio
from .fakes.vk import GROUP_ID, FakeVk, event, message_new
from .fakes.vk import TOKEN as VK_TOKEN
from .fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, PHONE_NUMBER_ID, FakeWhatsApp

pytestmark = pytest.mark.usefixtures("clock")

RU = "Здравствуйте! Где мой заказ 1042? Он должен был прийти вчера."
EN = "Hello! Where is my order 1042? It should have arrived yesterday."
# The test clock says Saturday 2031-03-01 09:00 UTC; the team works weekdays.
CLOSED = {"timezone": "Europe/Moscow", "days": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
RU_NOTICE = "Сейчас мы не работаем и вернёмся в понедельник"
EN_NOTICE = "We are closed now and will be back on Monday"

# --- Detection ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Здравствуйте, где мой заказ?", ("ru", True)),
    ("Hello, where is my order?", ("en", True)),
    ("да", ("ru", False)),
    ("ok", ("en", False)),
    ("Мой заказ A-12345 не пришёл", ("ru", True)),  # an order code is no English
    ("see https://shop.example/orders/17 пожалуйста", ("ru", False)),
    ("1042", None),
    ("👍", None),
    ("?", None),
    ("hello привет", None),  # mixed: says nothing
])
def test_the_script_of_a_text_gives_its_language(text: str, expected: tuple[str, bool] | None) -> None:
    found = detect(text)
    assert (None if found is None else (found.language, found.clear)) == expected


def test_a_known_language_changes_only_for_a_clear_message_and_never_over_an_agents_choice() -> None:
    assert follow(None, None, hint=None, text="ok") == ("en", "text")  # something beats nothing
    assert follow("ru", "text", hint=None, text="ok thanks") is None  # a Russian customer's "ok" stays Russian
    assert follow("ru", "text", hint=None, text="Sorry, I cannot read Russian, please write English") == ("en", "text")
    assert follow("en", "agent", hint="ru", text=RU) is None  # an agent's choice wins
    assert follow("en", "text", hint="ru-RU", text="ok") == ("ru", "provider")  # a hint beats the text
    assert follow("ru", "provider", hint="ru", text=EN) is None
    assert follow("ru", "provider", hint=None, text=EN) == ("en", "text")  # no hint this time: the text speaks


@given(st.text(max_size=80))
def test_detection_never_fails_and_a_clear_result_is_one_script(text: str) -> None:
    found = detect(text)
    if found is not None and found.clear:
        letters = [c for c in text if c.isalpha()]
        assert len(letters) >= 12


# --- Per channel -----------------------------------------------------------------------------------------

Writes = Callable[[str, str, str], Awaitable[None]]  # (who, text, their language hint) → message stored


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def closed_queue(client: httpx.AsyncClient, admin: Actor) -> int:
    r = await client.post("/api/v1/queues", headers=admin.headers, json={
        "name": "Support", "business_hours": CLOSED, "accept_timeout_seconds": 0, "wait_notice_seconds": 0})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def _channel(client: httpx.AsyncClient, admin: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/channels", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def api_writer(client: httpx.AsyncClient, admin: Actor, queue: int, _: Runtime) -> AsyncIterator[Writes]:
    channel = await _channel(client, admin, {"type": "api", "name": "CRM", "queue_id": queue})

    async def writes(who: str, text: str, hint: str) -> None:
        r = await post_inbound(client, channel, msg_id=uuid.uuid4().hex, contact=who, text=text)
        assert r.status_code == 200, r.text

    yield writes


async def telegram_writer(client: httpx.AsyncClient, admin: Actor, queue: int, rt: Runtime) -> AsyncIterator[Writes]:
    fake = FakeTelegram()
    await fake.start()
    bot = await _channel(client, admin, {"type": "telegram", "name": "Shop bot", "queue_id": queue,
                                         "settings": {"api_base_url": fake.url},
                                         "credentials": {"bot_token": TG_TOKEN}})
    ids = iter(range(1, 1000))

    async def writes(who: str, text: str, hint: str) -> None:
        user_id = 5_550_000 + len(who)
        n = next(ids)
        update = {"update_id": 700_000 + n, "message": {
            "message_id": n, "date": 1709283600, "text": text,
            "from": {"id": user_id, "is_bot": False, "first_name": who, "language_code": hint},
            "chat": {"id": user_id, "first_name": who, "type": "private"}}}
        r = await client.post(f"/webhooks/{bot['id']}", json=update, headers={
            "x-telegram-bot-api-secret-token": bot["generated_credentials"]["webhook_secret"]})
        assert r.status_code == 200, r.text

    yield writes
    client_, rt.channel_client = rt.channel_client, None
    if isinstance(client_, httpx.AsyncClient):
        await client_.aclose()
    await fake.stop()


async def vk_writer(client: httpx.AsyncClient, admin: Actor, queue: int, _: Runtime) -> AsyncIterator[Writes]:
    fake = FakeVk()
    await fake.start()
    channel = await _channel(client, admin, {
        "type": "vk", "name": "VK community", "queue_id": queue,
        "settings": {"api_base_url": fake.url, "group_id": GROUP_ID, "confirmation_code": "a1b2c3d4"},
        "credentials": {"access_token": VK_TOKEN}})
    ids = iter(range(1, 1000))

    async def writes(who: str, text: str, hint: str) -> None:
        n = next(ids)
        body = event("message_new", message_new(from_id=100_000 + len(who), text=text, message_id=n,
                                                lang_id={"ru": 0, "en": 3}[hint]),
                     secret=channel["generated_credentials"]["secret_key"], event_id=f"ev{n:038x}")
        r = await client.post(f"/webhooks/{channel['id']}", json=body)
        assert r.status_code == 200 and r.text == "ok", r.text

    yield writes
    await fake.stop()


async def whatsapp_writer(client: httpx.AsyncClient, admin: Actor, queue: int, _: Runtime) -> AsyncIterator[Writes]:
    fake = FakeWhatsApp()
    await fake.start()
    channel = await _channel(client, admin, {
        "type": "whatsapp", "name": "WhatsApp", "queue_id": queue,
        "settings": {"api_base_url": fake.base_url, "phone_number_id": PHONE_NUMBER_ID},
        "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}})

    async def writes(who: str, text: str, hint: str) -> None:
        payload = fake.text_payload(f"wamid.{uuid.uuid4().hex}", text, sender=f"97298765{len(who):04d}", name=who)
        r = await fake.deliver(client, f"/webhooks/{channel['id']}", payload)
        assert r.status_code == 200, r.text

    yield writes
    await fake.stop()


async def sms_writer(client: httpx.AsyncClient, admin: Actor, queue: int, _: Runtime) -> AsyncIterator[Writes]:
    fake = FakeTwilio()
    await fake.start()
    channel = await _channel(client, admin, {
        "type": "sms", "name": "SMS", "queue_id": queue, "credentials": {"auth_token": AUTH_TOKEN},
        "settings": {"api_base_url": fake.url, "account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER}})

    async def writes(who: str, text: str, hint: str) -> None:
        params = fake.inbound_params(sender=f"+1415555{len(who):04d}", to=FROM_NUMBER, body=text)
        r = await fake.post_signed(client, f"http://testserver/webhooks/{channel['id']}", params)
        assert r.status_code == 200, r.text

    yield writes
    await fake.stop()


async def email_writer(client: httpx.AsyncClient, admin: Actor, queue: int, rt: Runtime) -> AsyncIterator[Writes]:
    import asyncio
    import smtplib
    from email.message import EmailMessage

    await _channel(client, admin, {
        "type": "email", "name": "Support mail", "queue_id": queue,
        "settings": {"address": "support@shop.example", "display_name": "Shop", "inbound": ["smtp"],
                     "smtp_host": "127.0.0.1", "smtp_port": 2525, "smtp_security": "none"}})
    listener = SmtpListener(Host(rt), max_message_bytes=1_000_000, hostname="mx.shop.example")
    await listener.start("127.0.0.1", 0)

    def send(who: str, text: str) -> None:
        mail = EmailMessage()
        mail["From"] = f"{who} <{who}@customer.example>"
        mail["To"] = "support@shop.example"
        mail["Subject"] = text[:30]
        mail["Message-ID"] = f"<{uuid.uuid4().hex}@customer.example>"
        mail.set_content(text)
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as smtp:
            smtp.send_message(mail)

    async def writes(who: str, text: str, hint: str) -> None:
        await asyncio.to_thread(send, who, text)

    yield writes
    await listener.stop()


async def webchat_writer(client: httpx.AsyncClient, admin: Actor, queue: int, _: Runtime) -> AsyncIterator[Writes]:
    chat = await _channel(client, admin, {"type": "webchat", "name": "Shop chat", "queue_id": queue,
                                          "settings": {}})
    tokens: dict[str, str] = {}

    async def writes(who: str, text: str, hint: str) -> None:
        if who not in tokens:
            # The page is the shop's (English) site whatever the visitor speaks: no hint about the person.
            r = await client.post(f"/widget/{chat['id']}/session", json={"token": None})
            assert r.status_code == 200, r.text
            tokens[who] = r.json()["token"]
        r = await client.post(f"/widget/{chat['id']}/messages", headers={"Authorization": f"Bearer {tokens[who]}"},
                              json={"client_id": uuid.uuid4().hex, "text": text})
        assert r.status_code == 200, r.text

    yield writes


WRITERS = {"api": api_writer, "telegram": telegram_writer, "vk": vk_writer, "whatsapp": whatsapp_writer,
           "sms": sms_writer, "email": email_writer, "webchat": webchat_writer}


@pytest.fixture(params=sorted(WRITERS))
async def writes(request: pytest.FixtureRequest, client: httpx.AsyncClient, admin: Actor, closed_queue: int,
                 runtime: Runtime) -> AsyncIterator[Writes]:
    async for w in WRITERS[request.param](client, admin, closed_queue, runtime):
        yield w


async def said_after(client: httpx.AsyncClient, admin: Actor) -> dict[str, list[str]]:
    """What the system wrote in each conversation, by the customer's first message there."""
    out: dict[str, list[str]] = {}
    for conv in (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]:
        detail = (await client.get(f"/api/v1/conversations/{conv['id']}", headers=admin.headers)).json()
        first = next(m["text"] for m in detail["messages"] if m["direction"] == "in")
        out[first.strip()] = [m["text"] for m in detail["messages"] if m["direction"] == "out"]
    return out


async def test_a_russian_customer_is_told_in_russian_and_an_english_one_in_english(
        writes: Writes, client: httpx.AsyncClient, admin: Actor, runtime: Runtime) -> None:
    await writes("Ivanov", RU, "ru")
    await writes("Smithson", EN, "en")
    await router_of(runtime).run_until_idle()
    said = await said_after(client, admin)
    ru, en = said[RU], said[EN]
    assert len(ru) == 1 and ru[0].startswith(RU_NOTICE), ru
    assert len(en) == 1 and en[0].startswith(EN_NOTICE), en


async def test_an_agents_choice_of_language_wins_over_what_the_customer_writes(
        client: httpx.AsyncClient, admin: Actor, api_channel: dict[str, Any]) -> None:
    r = await post_inbound(client, api_channel, msg_id="m1", contact="c1", text=RU)
    contact_id = (await client.get(f"/api/v1/conversations/{r.json()['conversation_id']}",
                                   headers=admin.headers)).json()["contact"]["id"]
    contact = (await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)).json()
    assert (contact["language"], contact["language_source"]) == ("ru", "text")
    await post_inbound(client, api_channel, msg_id="m2", contact="c1", text="ok")  # too little to change it
    contact = (await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)).json()
    assert contact["language"] == "ru"
    r = await client.patch(f"/api/v1/contacts/{contact_id}", json={"language": "en"}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["language_source"] == "agent", r.text
    await post_inbound(client, api_channel, msg_id="m3", contact="c1", text=RU)
    contact = (await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)).json()
    assert (contact["language"], contact["language_source"]) == ("en", "agent")
    r = await client.patch(f"/api/v1/contacts/{contact_id}", json={"language": None}, headers=admin.headers)
    assert r.json()["language_source"] is None  # handed back to detection
    await post_inbound(client, api_channel, msg_id="m4", contact="c1", text=RU)
    contact = (await client.get(f"/api/v1/contacts/{contact_id}", headers=admin.headers)).json()
    assert (contact["language"], contact["language_source"]) == ("ru", "text")
