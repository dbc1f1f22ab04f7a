"""The Telegram channel: updates from Telegram become conversations exactly once, replies reach the chat
through the Bot API (split, with buttons and files, retried as Telegram asks), long polling commits before
it moves on.

Telegram is tests/fakes/telegram.py, a real HTTP server on 127.0.0.1 speaking the Bot API's wire format.
Updates are real payload shapes (captured from the Bot API and anonymised) and are posted to the webhook
over HTTP exactly as Telegram posts them; every one is posted twice, as Telegram does after a timeout.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kommutator.channels.base import (
    ChannelConfig,
    InboundRequest,
    OutboundAttachment,
    OutboundMessage,
    SendError,
)
from kommutator.channels.host import Host
from kommutator.channels.registry import get_adapter
from kommutator.channels.text import utf16_length as utf16_len
from kommutator.channels.types.telegram import TelegramChannel
from kommutator.channels.types.telegram.outbound import Progress, split_text
from kommutator.channels.types.telegram.polling import Poller, PollError
from kommutator.clock import now
from kommutator.conversations.models import Message
from kommutator.errors import ProblemError
from kommutator.ingest.models import InboundEvent
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker

from .fakes.telegram import TOKEN, Failure, FakeTelegram

# --- Real update payloads --------------------------------------------------------------------------------

ANNA = {"id": 5551234567, "is_bot": False, "first_name": "Анна", "last_name": "Петрова", "username": "anna_p",
        "language_code": "ru"}
ANNA_CHAT = {"id": 5551234567, "first_name": "Анна", "last_name": "Петрова", "username": "anna_p",
             "type": "private"}
BOT = {"id": 123456789, "is_bot": True, "first_name": "Shop", "username": "shop_help_bot"}

TEXT = {"update_id": 704211001, "message": {
    "message_id": 17, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283600,
    "text": "Здравствуйте! Где мой заказ №4521?"}}

PHOTO = {"update_id": 704211002, "message": {
    "message_id": 18, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283660,
    "photo": [
        {"file_id": "AgACAgIAAxkBAAMSZeF1_small", "file_unique_id": "AQADx7sxG9KXSUt4", "file_size": 1292,
         "width": 90, "height": 67},
        {"file_id": "AgACAgIAAxkBAAMSZeF1_medium", "file_unique_id": "AQADx7sxG9KXSUty", "file_size": 23870,
         "width": 320, "height": 240},
        {"file_id": "AgACAgIAAxkBAAMSZeF1_large", "file_unique_id": "AQADx7sxG9KXSUt9", "file_size": 81212,
         "width": 1280, "height": 960}],
    "caption": "Вот так пришла коробка"}}

EDIT = {"update_id": 704211003, "edited_message": {
    "message_id": 17, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283600, "edit_date": 1709283720,
    "text": "Здравствуйте! Где мой заказ №4522?"}}

DOCUMENT = {"update_id": 704211005, "message": {
    "message_id": 20, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283900,
    "document": {"file_name": "чек.pdf", "mime_type": "application/pdf", "file_id": "BQACAgIAAxkBAAMUZeF2_doc",
                 "file_unique_id": "AgADtz4AAtKXSUs", "file_size": 52340}}}

VOICE = {"update_id": 704211006, "message": {
    "message_id": 21, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283960,
    "voice": {"duration": 3, "mime_type": "audio/ogg", "file_id": "AwACAgIAAxkBAAMVZeF3_voice",
              "file_unique_id": "AgADuD4AAtKXSUs", "file_size": 9870}}}


def callback(update_id: int, bot_message_id: int, data: str, keyboard: list[list[dict[str, str]]]) -> dict[str, Any]:
    """A button press under our message ``bot_message_id``, as Telegram sends it."""
    return {"update_id": update_id, "callback_query": {
        "id": f"43829{update_id}", "from": ANNA, "chat_instance": "-8731283712837123", "data": data,
        "message": {"message_id": bot_message_id, "from": BOT, "chat": ANNA_CHAT, "date": 1709284000,
                    "text": "Как вам ответ?", "reply_markup": {"inline_keyboard": keyboard}}}}


RATING_KEYBOARD = [[{"text": "👍 Помогло", "callback_data": "rate:good"}],
                   [{"text": "👎 Нет", "callback_data": "rate:bad"}]]
PRESS = callback(704211004, 1000, "rate:good", RATING_KEYBOARD)

GROUP_MESSAGE = {"update_id": 704211090, "message": {
    "message_id": 301, "from": ANNA, "date": 1709284100, "text": "всем привет",
    "chat": {"id": -1001234567890, "title": "Покупатели", "type": "supergroup"}}}
BLOCKED_BY_USER = {"update_id": 704211091, "my_chat_member": {
    "chat": ANNA_CHAT, "from": ANNA, "date": 1709284200,
    "old_chat_member": {"user": BOT, "status": "member"}, "new_chat_member": {"user": BOT, "status": "kicked",
                                                                                "until_date": 0}}}
PINNED = {"update_id": 704211092, "message": {
    "message_id": 22, "from": ANNA, "chat": ANNA_CHAT, "date": 1709284300,
    "pinned_message": {"message_id": 17, "from": ANNA, "chat": ANNA_CHAT, "date": 1709283600, "text": "x"}}}


# --- Fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def telegram(runtime) -> AsyncIterator[FakeTelegram]:  # type: ignore[no-untyped-def]
    fake = FakeTelegram()
    await fake.start()
    get_adapter("telegram").progress = Progress()  # type: ignore[attr-defined]
    yield fake
    client, runtime.channel_client = runtime.channel_client, None  # file downloads and polling use it
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()
    await fake.stop()


async def create_bot(client, admin, telegram, **settings: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Shop bot", "settings": {"api_base_url": telegram.url, **settings},
        "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def bot(client, admin, telegram) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await create_bot(client, admin, telegram)


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="worker-tg")
    yield w
    await w.stop()


async def post_update(client: httpx.AsyncClient, bot: dict[str, Any], update: Any, *,
                      secret: str | None = None) -> httpx.Response:
    """POST an update to the webhook as Telegram does: JSON body, the secret token in its header."""
    secret = bot["generated_credentials"]["webhook_secret"] if secret is None else secret
    body = update if isinstance(update, bytes) else json.dumps(update, ensure_ascii=False).encode()
    return await client.post(f"/webhooks/{bot['id']}", content=body,
                             headers={"content-type": "application/json", "x-telegram-bot-api-secret-token": secret})


async def post_twice(client: httpx.AsyncClient, bot: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Telegram's redelivery of the same update must change nothing and get the same answer."""
    first = await post_update(client, bot, update)
    again = await post_update(client, bot, update)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json() == again.json()
    return dict(first.json())


async def count(runtime, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def the_conversation(client, admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    listed = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]
    assert len(listed) == 1, f"expected one conversation, got {listed}"
    r = await client.get(f"/api/v1/conversations/{listed[0]['id']}", headers=admin.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def reply(client, admin, conversation_id: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": text},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def message_row(runtime, message_id: int) -> Message:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        msg = await s.get(Message, message_id)
    assert msg is not None
    return msg


async def outbox_item(runtime, message_id: int) -> OutboxItem:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return (await s.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).scalar_one()


async def queue_bot_message(runtime, conversation_id: int, channel_id: int, chat: str, text: str,  # type: ignore[no-untyped-def]
                            buttons: list[dict[str, str]]) -> int:
    """An outbound message with buttons, queued as conversations/actions.py queues a reply (the reply API
    carries no buttons; bot flows set them in the payload)."""
    async def job(tx):  # type: ignore[no-untyped-def]
        ts = now()
        msg = Message(conversation_id=conversation_id, direction="out", sender_type="bot", kind="text",
                      channel_id=channel_id, text=text, status="queued", created_at=ts, status_updated_at=ts,
                      payload={"buttons": buttons})
        tx.session.add(msg)
        await tx.session.flush()
        tx.session.add(OutboxItem(kind="message", message_id=msg.id, channel_id=channel_id,
                                  ordering_key=f"{channel_id}:{chat}", payload={"to": chat}, next_attempt_at=ts))
        return msg.id

    return int(await runtime.db.write(job))


# --- Inbound: webhook -----------------------------------------------------------------------------------


async def test_a_text_message_opens_one_conversation_however_often_telegram_delivers_it(client, admin, runtime, bot):
    assert await post_twice(client, bot, TEXT) == {"ok": True}
    conv = await the_conversation(client, admin)
    assert [m["text"] for m in conv["messages"]] == ["Здравствуйте! Где мой заказ №4521?"]
    assert conv["messages"][0]["channel_id"] == bot["id"]
    contact = conv["contact"]
    assert (contact["name"], contact["language"]) == ("Анна Петрова", "ru")
    assert contact["attributes"] == {"telegram_username": "anna_p"}
    (identity,) = contact["identities"]
    assert (identity["channel_type"], identity["external_id"]) == ("telegram", "5551234567")
    assert await count(runtime, InboundEvent) == 1
    async with runtime.db.read() as s:
        stored = (await s.execute(select(InboundEvent))).scalar_one()
    assert stored.provider_event_id == "update:704211001"
    assert (await message_row(runtime, conv["messages"][0]["id"])).provider_message_id == "5551234567:17"


async def test_a_photo_is_downloaded_in_its_largest_size_and_served_as_an_attachment(client, admin, runtime, bot,
                                                                                    telegram):
    jpeg = b"\xff\xd8\xff\xe0" + b"box photo" * 100
    telegram.add_file("AgACAgIAAxkBAAMSZeF1_large", jpeg, file_path="photos/file_7.jpg")
    await post_twice(client, bot, PHOTO)
    conv = await the_conversation(client, admin)
    (msg,) = conv["messages"]
    assert msg["text"] == "Вот так пришла коробка"
    (att,) = msg["attachments"]
    assert (att["filename"], att["content_type"], att["size"]) == ("photo_18.jpg", "image/jpeg", len(jpeg))
    got = await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)
    assert got.status_code == 200 and got.content == jpeg
    assert {c.params["file_id"] for c in telegram.sent("getFile")} == {"AgACAgIAAxkBAAMSZeF1_large"}
    assert len(telegram.sent("getFile")) == 1  # the redelivery is recognised before anything is downloaded


async def test_documents_and_voice_messages_keep_their_names_and_types(client, admin, bot, telegram):
    telegram.add_file("BQACAgIAAxkBAAMUZeF2_doc", b"%PDF-1.7 receipt")
    telegram.add_file("AwACAgIAAxkBAAMVZeF3_voice", b"OggS voice")
    await post_twice(client, bot, DOCUMENT)
    await post_twice(client, bot, VOICE)
    conv = await the_conversation(client, admin)
    files = [(a["filename"], a["content_type"]) for m in conv["messages"] for a in m["attachments"]]
    assert files == [("чек.pdf", "application/pdf"), ("voice_21.ogg", "audio/ogg")]


async def test_a_file_over_20_mb_is_refused_but_the_message_arrives(client, admin, bot, telegram):
    telegram.add_file("BQACAgIAAxkBAAMUZeF2_doc", b"big", size=25 * 1024 * 1024)
    await post_twice(client, bot, DOCUMENT)
    (msg,) = (await the_conversation(client, admin))["messages"]
    assert msg["attachments"] == []
    (refused,) = msg["payload"]["files_refused"]
    assert refused["filename"] == "чек.pdf" and "at most 20 MB" in refused["reason"], refused


async def test_a_failed_download_makes_telegram_retry_the_update(client, admin, runtime, bot, telegram):
    telegram.add_file("BQACAgIAAxkBAAMUZeF2_doc", b"%PDF-1.7 receipt")
    telegram.fail(Failure.server_error(), method="getFile")
    r = await post_update(client, bot, DOCUMENT)
    assert r.status_code == 503 and r.json()["code"] == "file_download_failed", r.text
    assert await count(runtime, Message) == 0, "nothing is committed without its file"
    assert await post_twice(client, bot, DOCUMENT) == {"ok": True}, "Telegram's retry finds the file this time"
    (msg,) = (await the_conversation(client, admin))["messages"]
    assert [a["filename"] for a in msg["attachments"]] == ["чек.pdf"]


async def test_an_edit_replaces_the_text_and_keeps_the_original(client, admin, runtime, bot):
    await post_twice(client, bot, TEXT)
    await post_twice(client, bot, EDIT)
    (msg,) = (await the_conversation(client, admin))["messages"]
    assert msg["text"] == "Здравствуйте! Где мой заказ №4522?"
    assert [e["text"] for e in msg["payload"]["edits"]] == ["Здравствуйте! Где мой заказ №4521?"]


async def test_a_button_press_arrives_as_its_label_with_its_id_and_is_answered(client, admin, runtime, bot):
    answer = await post_twice(client, bot, PRESS)
    assert answer == {"method": "answerCallbackQuery", "callback_query_id": "43829704211004"}, \
        "the webhook's reply answers the callback query, so the button stops spinning"
    (msg,) = (await the_conversation(client, admin))["messages"]
    assert (msg["text"], msg["payload"]["button"]) == ("👍 Помогло", "rate:good")
    assert msg["payload"]["pressed_on"] == "5551234567:1000"


async def test_a_press_on_a_button_no_longer_shown_uses_its_data(client, admin, bot):
    press = callback(704211010, 1000, "rate:bad", [])
    await post_twice(client, bot, press)
    (msg,) = (await the_conversation(client, admin))["messages"]
    assert (msg["text"], msg["payload"]["button"]) == ("rate:bad", "rate:bad")


@pytest.mark.parametrize("update", [GROUP_MESSAGE, BLOCKED_BY_USER, PINNED], ids=["group", "member", "pinned"])
async def test_updates_the_product_does_not_use_are_acknowledged_and_not_stored(client, runtime, bot, update):
    assert await post_twice(client, bot, update) == {"ok": True}
    assert await count(runtime, Message) == 0
    assert await count(runtime, InboundEvent) == 0


@pytest.mark.parametrize("secret", ["", "wrong-secret", "x" * 300])
async def test_a_request_without_the_right_secret_token_is_403(client, runtime, bot, secret):
    r = await post_update(client, bot, TEXT, secret=secret)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "invalid_secret_token" and "setWebhook" in r.json()["detail"]
    r = await client.post(f"/webhooks/{bot['id']}", json=TEXT)
    assert r.status_code == 403
    assert await count(runtime, InboundEvent) == 0


async def test_bad_json_is_400_and_a_body_that_is_no_update_is_422(client, runtime, bot):
    r = await post_update(client, bot, b'{"update_id": 1, "message": ')
    assert r.status_code == 400 and r.json()["code"] == "invalid_json", r.text
    r = await post_update(client, bot, {"update_id": "first", "message": {"text": "hi"}})
    assert r.status_code == 422 and r.json()["code"] == "invalid_update", r.text
    r = await post_update(client, bot, [TEXT])
    assert r.status_code == 422
    assert await count(runtime, InboundEvent) == 0


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=20)
_id = st.integers(-(2**40), 2**40) | st.integers()
_message_like = st.fixed_dictionaries({
    "message_id": _id, "date": _id, "chat": st.fixed_dictionaries(
        {"id": _id, "type": st.sampled_from(["private", "group"])}),
}, optional={"text": st.text() | _json, "caption": _json, "photo": st.lists(st.fixed_dictionaries(
    {"file_id": st.text(max_size=5), "file_size": st.integers()}), max_size=3) | _json, "from": _json,
    "document": _json, "sticker": _json, "location": _json, "contact": _json, "reply_markup": _json})
_update_like = st.fixed_dictionaries({"update_id": st.integers(0, 2**40) | st.integers(-5, 2**64)}, optional={
    "message": _message_like | _json, "edited_message": _message_like, "callback_query": st.fixed_dictionaries(
        {"id": st.text(max_size=10), "from": st.fixed_dictionaries({"id": st.integers()}) | _json,
         "data": st.text(max_size=70) | _json}, optional={"message": _message_like})})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def _mutated_real_update(draw: st.DrawFn) -> Any:
    """A real update with one part replaced by arbitrary JSON (or removed)."""
    update = copy.deepcopy(draw(st.sampled_from([TEXT, PHOTO, EDIT, DOCUMENT, VOICE, PRESS, GROUP_MESSAGE, PINNED])))
    path = draw(st.sampled_from(_paths(update)[1:]))
    parent = update
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_json)
    return update


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutated_real_update() | _update_like | _json)
def test_the_parser_answers_4xx_never_crashes_on_any_json(body):
    adapter = TelegramChannel()
    channel = ChannelConfig(id=1, type="telegram", name="t", settings={}, credentials={}, enabled=True)
    request = InboundRequest(method="POST", url="http://t/webhooks/1", headers={}, query={},
                             body=json.dumps(body).encode())
    try:
        items = adapter.parse(channel, request)
    except ProblemError as exc:
        assert exc.status in (400, 422)
        return
    for item in items:
        assert item.event_id.startswith("update:")
        assert "\x00" not in getattr(item, "text", "")
    assert adapter.acknowledge(channel, request, []).status == 200


# --- Outbound -------------------------------------------------------------------------------------------


async def open_chat(client, admin, bot) -> int:  # type: ignore[no-untyped-def]
    await post_update(client, bot, TEXT)
    return int((await the_conversation(client, admin))["id"])


async def test_a_reply_of_5000_characters_arrives_as_two_messages_cut_between_words(client, admin, runtime, bot,
                                                                                     telegram, worker, clock):
    conv = await open_chat(client, admin, bot)
    words = " ".join(f"слово{n}" for n in range(700))
    assert len(words) > 5000
    sent = await reply(client, admin, conv, words[:5000].rstrip())
    assert await worker.run_due() == 1
    first, second = telegram.sent("sendMessage")
    assert [c.params["chat_id"] for c in (first, second)] == [5551234567, 5551234567]
    assert all(len(c.params["text"]) <= 4096 for c in (first, second))
    assert first.params["text"] + " " + second.params["text"] == words[:5000].rstrip()
    assert "reply_markup" not in first.params
    msg = await message_row(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", "5551234567:1000"), \
        "the message is known by its first part's id"


async def test_buttons_arrive_as_an_inline_keyboard_and_a_press_comes_back(client, admin, runtime, bot, telegram,
                                                                           worker, clock):
    conv = await open_chat(client, admin, bot)
    buttons = [{"id": "rate:good", "label": "👍 Помогло"}, {"id": "rate:bad", "label": "👎 Нет"}]
    message_id = await queue_bot_message(runtime, conv, bot["id"], "5551234567", "Как вам ответ?", buttons)
    await worker.run_due()
    (call,) = telegram.sent("sendMessage")
    assert call.params["reply_markup"] == {"inline_keyboard": RATING_KEYBOARD}
    assert call.params["text"] == "Как вам ответ?", "buttons are not repeated as numbered lines on Telegram"
    bot_message = (await message_row(runtime, message_id)).provider_message_id
    assert bot_message == "5551234567:1000"
    await post_twice(client, bot, callback(704211020, 1000, "rate:good", RATING_KEYBOARD))
    pressed = (await the_conversation(client, admin))["messages"][-1]
    assert (pressed["direction"], pressed["text"], pressed["payload"]["button"]) == ("in", "👍 Помогло", "rate:good")


async def test_a_button_id_over_64_bytes_fails_the_message_before_anything_is_sent(client, admin, runtime, bot,
                                                                                   telegram, worker, clock):
    conv = await open_chat(client, admin, bot)
    message_id = await queue_bot_message(runtime, conv, bot["id"], "5551234567", "Выберите",
                                         [{"id": "я" * 33, "label": "Долгий"}])
    await worker.run_due()
    msg = await message_row(runtime, message_id)
    assert msg.status == "failed" and "64 bytes" in msg.status_reason, msg.status_reason
    assert telegram.sent("sendMessage") == []


async def test_429_reschedules_not_before_retry_after_then_delivers(client, admin, runtime, bot, telegram, worker,
                                                                    clock):
    conv = await open_chat(client, admin, bot)
    sent = await reply(client, admin, conv, "Заказ уже в пути")
    telegram.fail(Failure.too_many_requests(retry_after=37))
    await worker.run_due()
    item = await outbox_item(runtime, sent["id"])
    assert item.status == "pending" and "slow down" in item.last_error, item.last_error
    assert item.next_attempt_at - clock.t >= dt.timedelta(seconds=37)
    clock.tick(36)
    assert await worker.run_due() == 0, "Telegram asked for 37 seconds"
    clock.tick(2)
    assert await worker.run_due() == 1
    assert (await message_row(runtime, sent["id"])).status == "sent"
    assert [c.params["text"] for c in telegram.sent("sendMessage")] == ["Заказ уже в пути"] * 2


async def test_a_429_on_the_second_part_resends_only_the_second_part(client, admin, runtime, bot, telegram, worker,
                                                                     clock):
    conv = await open_chat(client, admin, bot)
    text = "Первый абзац.\n\n" + "б" * 4070 + "\n\n" + "Последний абзац."
    sent = await reply(client, admin, conv, text)
    real_handler = telegram._sendMessage
    calls = {"n": 0}

    async def second_part_limited(params, files):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            from .fakes.telegram import ApiError

            raise ApiError(429, "Too Many Requests: retry after 3", retry_after=3)
        return await real_handler(params, files)

    telegram._sendMessage = second_part_limited  # type: ignore[method-assign]
    await worker.run_due()
    assert (await message_row(runtime, sent["id"])).status == "queued"
    clock.tick(10)
    await worker.run_due()
    texts = [c.params["text"] for c in telegram.sent("sendMessage")]
    assert texts[0] == "Первый абзац.\n\n" + "б" * 4070
    assert texts[1] == texts[2] == "Последний абзац.", "the first part is not sent again"
    msg = await message_row(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", "5551234567:1000")


async def test_server_errors_are_retried(client, admin, runtime, bot, telegram, worker, clock):
    conv = await open_chat(client, admin, bot)
    sent = await reply(client, admin, conv, "hello")
    telegram.fail(Failure.server_error())
    await worker.run_due()
    assert "500" in (await outbox_item(runtime, sent["id"])).last_error
    clock.tick(60)
    await worker.run_due()
    assert (await message_row(runtime, sent["id"])).status == "sent"


async def test_a_blocked_bot_fails_the_message_with_the_reason(client, admin, runtime, bot, telegram, worker, clock):
    conv = await open_chat(client, admin, bot)
    sent = await reply(client, admin, conv, "Заказ уже в пути")
    telegram.fail(Failure.blocked())
    await worker.run_due()
    shown = (await client.get(f"/api/v1/conversations/{conv}", headers=admin.headers)).json()["messages"][-1]
    assert shown["id"] == sent["id"] and shown["status"] == "failed"
    assert "bot was blocked by the user" in shown["status_reason"]
    assert "unblock" in shown["status_reason"], "the agent learns what would fix it"
    assert (await outbox_item(runtime, sent["id"])).attempts == 1, "a refusal is not retried"


async def test_a_revoked_token_fails_with_a_sentence_and_never_shows_the_token(client, admin, runtime, bot,
                                                                              telegram, worker, clock):
    conv = await open_chat(client, admin, bot)
    telegram.token = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw8"  # the bot's token was revoked
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    msg = await message_row(runtime, sent["id"])
    assert msg.status == "failed" and "bot_token" in msg.status_reason and "401" in msg.status_reason
    assert TOKEN not in msg.status_reason


def outbound(text: str, *attachments: OutboundAttachment) -> OutboundMessage:
    return OutboundMessage(id=1, idempotency_key="msg_1_1", conversation_id=1, to="5551234567", text=text,
                           kind="text", created_at=now(), attachments=attachments)


async def test_files_go_as_multipart_documents_with_a_short_text_as_caption(telegram, tmp_path):
    invoice, photo = tmp_path / "invoice", tmp_path / "photo"
    invoice.write_bytes(b"%PDF-1.4 invoice")
    photo.write_bytes(b"\x89PNG photo")
    files = [OutboundAttachment(id=n, filename=name, content_type=ctype, size=p.stat().st_size, sha256="", url="",
                              path=p)
             for n, (name, ctype, p) in enumerate([("invoice.pdf", "application/pdf", invoice),
                                                   ("photo.png", "image/png", photo)], 1)]
    channel = ChannelConfig(id=1, type="telegram", name="t", settings={"api_base_url": telegram.url},
                            credentials={"bot_token": TOKEN}, enabled=True)
    adapter = TelegramChannel()
    async with httpx.AsyncClient() as http:
        result = await adapter.send(channel, outbound("Ваш счёт", files[0]), http)
        await adapter.send(channel, outbound("Счёт и фото", *files), http)
    (captioned, *_) = telegram.sent("sendDocument")
    assert captioned.params == {"chat_id": "5551234567", "caption": "Ваш счёт"}
    assert captioned.files["document"] == ("invoice.pdf", b"%PDF-1.4 invoice", "application/pdf")
    assert result.provider_message_id == "5551234567:1000"
    assert [c.method for c in telegram.calls] == ["sendDocument", "sendMessage", "sendDocument", "sendDocument"]
    assert [d[0] for d in telegram.sent_documents] == ["invoice.pdf", "invoice.pdf", "photo.png"]


async def test_a_reply_with_a_file_is_uploaded_with_its_text_as_caption(client, admin, runtime, bot, telegram,
                                                                             worker, clock):
    conv = await open_chat(client, admin, bot)
    r = await client.post(f"/api/v1/conversations/{conv}/attachments", headers=admin.headers,
                          files={"file": ("invoice.pdf", b"%PDF-1.4", "application/pdf")},
                          data={"text": "Your invoice", "kind": "text"})
    assert r.status_code == 201, r.text
    await worker.run_due()
    msg = await message_row(runtime, r.json()["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", "5551234567:1000"), msg.status_reason
    (call,) = telegram.sent("sendDocument")
    assert call.params == {"chat_id": "5551234567", "caption": "Your invoice"}
    assert call.files["document"] == ("invoice.pdf", b"%PDF-1.4", "application/pdf")
    assert telegram.sent("sendMessage") == []


async def test_a_file_gone_from_storage_fails_the_reply_before_anything_is_sent(telegram):
    gone = OutboundAttachment(id=1, filename="old.pdf", content_type="application/pdf", size=10, sha256="",
                              url="", path=None)
    channel = ChannelConfig(id=1, type="telegram", name="t", settings={"api_base_url": telegram.url},
                            credentials={"bot_token": TOKEN}, enabled=True)
    async with httpx.AsyncClient() as http:
        with pytest.raises(SendError) as refused:
            await TelegramChannel().send(channel, outbound("Вот файл, и текст подлиннее " * 50, gone), http)
    assert not refused.value.retryable and "old.pdf" in refused.value.reason
    assert telegram.calls == [], "nothing is half-sent"


# --- Text splitting ---------------------------------------------------------------------------------------


def test_split_prefers_paragraphs_then_lines_then_words():
    para = "a" * 3000 + "\n\n" + "b" * 3000
    assert split_text(para) == ["a" * 3000, "b" * 3000]
    lines = "a" * 3000 + "\n" + "b" * 600 + " " + "c" * 3000
    assert split_text(lines) == ["a" * 3000, "b" * 600 + " " + "c" * 3000], "a line break beats a later space"
    early_line = "a" * 1000 + "\n" + "b" * 2500 + " " + "c" * 3000
    assert split_text(early_line) == ["a" * 1000 + "\n" + "b" * 2500, "c" * 3000], \
        "a break in the first half would make a short part: the last space in the second half wins"
    assert split_text("x" * 5000) == ["x" * 4096, "x" * 904]
    assert split_text("  \n ") == []


def test_split_counts_as_telegram_does_and_keeps_emoji_whole():
    text = "👍" * 3000  # 6000 UTF-16 code units
    parts = split_text(text)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    family = "👨‍👩‍👧" * 1000
    assert all(p.startswith("👨") and p.endswith("👧") for p in split_text(family))


@hypothesis_settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab я👍 \n\u0301"), max_size=9000), limit=st.integers(10, 5000))
def test_split_never_exceeds_the_limit_and_loses_nothing_but_whitespace(text, limit):
    parts = split_text(text, limit)
    assert all(0 < utf16_len(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


# --- Long polling -----------------------------------------------------------------------------------------


class CrashingHost(Host):
    """The server dies right after committing, before the offset is stored."""

    def __init__(self, rt, crashes: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__(rt)
        self.crashes = crashes

    async def set_state(self, channel_id: int, key: str, value: str) -> None:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("killed between ingest and set_state")
        await super().set_state(channel_id, key, value)


async def polling_bot(client, admin, runtime, telegram) -> ChannelConfig:  # type: ignore[no-untyped-def]
    created = await create_bot(client, admin, telegram, mode="polling", poll_timeout=0)
    (channel,) = await Host(runtime).channels("telegram")
    assert channel.id == created["id"]
    return channel


async def offset_of(runtime, channel_id: int) -> str | None:  # type: ignore[no-untyped-def]
    return await Host(runtime).get_state(channel_id, "offset")


async def test_polling_commits_the_updates_then_stores_the_offset(client, admin, runtime, telegram):
    channel = await polling_bot(client, admin, runtime, telegram)
    poller = Poller("telegram")
    for update in (TEXT, EDIT, PRESS, GROUP_MESSAGE):
        telegram.queue_update(copy.deepcopy(update))
    assert await poller.poll_once(Host(runtime), channel) == 4
    assert await offset_of(runtime, channel.id) == "704211091"
    (get_updates,) = telegram.sent("getUpdates")
    assert "offset" not in get_updates.params and get_updates.params["timeout"] == 0
    assert get_updates.params["allowed_updates"] == ["message", "edited_message", "callback_query"]
    (answered,) = telegram.sent("answerCallbackQuery")
    assert answered.params == {"callback_query_id": "43829704211004"}
    msgs = (await the_conversation(client, admin))["messages"]
    assert [m["text"] for m in msgs] == ["Здравствуйте! Где мой заказ №4522?", "👍 Помогло"]
    assert await poller.poll_once(Host(runtime), channel) == 0
    assert telegram.sent("getUpdates")[-1].params["offset"] == 704211091
    assert telegram.updates == [], "the offset confirmed the updates, so Telegram forgets them"


async def test_a_crash_between_commit_and_offset_fetches_the_updates_again_without_duplicates(
        client, admin, runtime, telegram):
    channel = await polling_bot(client, admin, runtime, telegram)
    for update in (TEXT, PRESS):
        telegram.queue_update(copy.deepcopy(update))
    poller = Poller("telegram")
    with pytest.raises(RuntimeError, match="killed"):
        await poller.poll_once(CrashingHost(runtime, crashes=1), channel)
    assert await offset_of(runtime, channel.id) is None
    assert await count(runtime, Message) == 2
    assert await poller.poll_once(Host(runtime), channel) == 2, "Telegram sends the unconfirmed updates again"
    assert await count(runtime, Message) == 2, "and they are recognised"
    assert await offset_of(runtime, channel.id) == "704211005"


async def test_an_update_that_cannot_be_committed_holds_the_offset_at_it(client, admin, runtime, telegram):
    channel = await polling_bot(client, admin, runtime, telegram)
    telegram.add_file("BQACAgIAAxkBAAMUZeF2_doc", b"%PDF")
    telegram.fail(Failure.server_error(), method="getFile")
    for update in (TEXT, DOCUMENT, VOICE):
        telegram.queue_update(copy.deepcopy(update))
    telegram.add_file("AwACAgIAAxkBAAMVZeF3_voice", b"OggS")
    with pytest.raises(PollError, match="704211005"):
        await Poller("telegram").poll_once(Host(runtime), channel)
    assert await offset_of(runtime, channel.id) == "704211002", "past the committed text, not past the document"
    assert await Poller("telegram").poll_once(Host(runtime), channel) == 2
    assert await offset_of(runtime, channel.id) == "704211007"
    assert await count(runtime, Message) == 3


async def test_a_webhook_conflict_is_logged_clearly_and_polling_goes_on(client, admin, runtime, telegram, caplog):
    channel = await polling_bot(client, admin, runtime, telegram)
    telegram.webhook = {"url": "https://example.com/webhooks/1", "secret_token": None}
    with pytest.raises(PollError, match="deleteWebhook"):
        await Poller("telegram").poll_once(Host(runtime), channel)

    poller = Poller("telegram", refresh_interval=0.05, error_delay=0.01, max_error_delay=0.02, idle_delay=0.01)
    telegram.queue_update(copy.deepcopy(TEXT))
    caplog.set_level(logging.WARNING, logger="kommutator.channels.types.telegram.polling")
    task = asyncio.create_task(poller.run(Host(runtime)))
    try:
        async with asyncio.timeout(10):
            while not any("deleteWebhook" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.01)
            telegram.webhook = None  # the administrator removed the webhook
            while await count(runtime, Message) == 0:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (record, *_) = [r for r in caplog.records if "deleteWebhook" in r.getMessage()]
    assert record.levelno == logging.WARNING and f"Telegram channel {channel.id}" in record.getMessage()


async def test_webhook_channels_are_not_polled(client, admin, runtime, bot, telegram):
    poller = Poller("telegram", refresh_interval=0.01)
    task = asyncio.create_task(poller.run(Host(runtime)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert telegram.sent("getUpdates") == []


# --- Set-up -----------------------------------------------------------------------------------------------


async def test_setup_gives_the_exact_set_webhook_call_which_telegram_accepts(client, admin, bot, telegram):
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", bot["generated_credentials"]["webhook_secret"])
    assert bot["credential_fields"] == ["bot_token", "webhook_secret"]
    setup = bot["setup"]
    call = re.search(r"curl -X POST '(?P<url>[^']+)' -H 'Content-Type: application/json' -d '(?P<body>[^']+)'", setup)
    assert call is not None, setup
    assert call["url"] == f"{telegram.url}/bot<bot_token>/setWebhook"
    body = json.loads(call["body"])
    assert body["url"] == f"http://testserver/webhooks/{bot['id']}" and body["secret_token"] == "<webhook_secret>"
    body["secret_token"] = bot["generated_credentials"]["webhook_secret"]
    async with httpx.AsyncClient() as http:
        answer = await http.post(call["url"].replace("<bot_token>", TOKEN), json=body)
    assert answer.json() == {"ok": True, "result": True}
    assert telegram.webhook == {"url": body["url"], "secret_token": body["secret_token"]}
    assert TOKEN not in setup


async def test_channel_settings_and_credentials_are_checked(client, admin, telegram):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Bad", "credentials": {"bot_token": "not-a-token"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "credentials.bot_token", r.text
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "telegram", "name": "Bad", "settings": {"mode": "push"}, "credentials": {"bot_token": TOKEN}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settings.mode", r.text
    created = await create_bot(client, admin, telegram, mode="polling")
    assert "deleteWebhook" in created["setup"]


def test_the_package_exports_the_adapter_registered_with_its_capabilities():
    from kommutator.channels.types import telegram

    assert telegram.__all__ == ["TelegramChannel", "TelegramCredentials", "TelegramSettings"]
    adapter = get_adapter("telegram")
    assert isinstance(adapter, TelegramChannel)
    caps = adapter.capabilities
    assert (caps.max_text_length, caps.buttons, caps.max_buttons, caps.attachments) == (4096, True, 100, True)
    assert (caps.messages_per_second, caps.messages_per_second_per_chat) == (30, 1)
