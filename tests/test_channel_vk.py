"""VK community messages end to end: the Callback API posts into the real webhook, agents reply through the
REST API, the outbox calls a fake VK API on 127.0.0.1 that drops resends by random_id as VK does.

Nothing lost, nothing doubled: every inbound payload is posted twice, and a reply resent after a crash
carries the same random_id per piece, which VK drops.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import func, select

from kommutator.channels.base import Button, ChannelConfig, OutboundAttachment, OutboundMessage, SendError
from kommutator.channels.registry import get_adapter
from kommutator.channels.text import split_text, utf16_length
from kommutator.channels.types.vk import media as vk_media
from kommutator.channels.types.vk import outbound
from kommutator.conversations.files_api import file_store
from kommutator.conversations.models import Attachment, Message
from kommutator.ingest.models import InboundEvent
from kommutator.workers import outbox as outbox_module
from kommutator.workers.outbox import OutboxWorker

from .fakes.vk import GROUP_ID, TOKEN, FakeVk, doc_attachment, event, message_new, photo_attachment

CUSTOMER = 100500
CONFIRMATION = "a1b2c3d4"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def vk() -> AsyncIterator[FakeVk]:
    fake = FakeVk()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channel(client, admin, vk) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "vk", "name": "VK community",
        "settings": {"api_base_url": vk.url, "group_id": GROUP_ID, "confirmation_code": CONFIRMATION},
        "credentials": {"access_token": TOKEN}})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="vk-worker")
    yield w
    await w.stop()


def secret_of(channel: dict[str, Any]) -> str:
    return str(channel["generated_credentials"]["secret_key"])


async def post(client: httpx.AsyncClient, channel: dict[str, Any], body: Any, **headers: str) -> httpx.Response:
    return await client.post(f"/webhooks/{channel['id']}", content=json.dumps(body, ensure_ascii=False),
                             headers={"content-type": "application/json", **headers})


async def customer_writes(client: httpx.AsyncClient, channel: dict[str, Any], text: str, *, message_id: int,
                          event_id: str | None = None, **kw: Any) -> httpx.Response:
    body = event("message_new", message_new(from_id=CUSTOMER, text=text, message_id=message_id, **kw),
                 secret=secret_of(channel), event_id=event_id or f"ev{message_id:038x}")
    return await post(client, channel, body)


async def only_conversation(client, admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    listed = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]
    assert len(listed) == 1, listed
    r = await client.get(f"/api/v1/conversations/{listed[0]['id']}", headers=admin.headers)
    return dict(r.json())


async def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def reply(client, admin, conv_id: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": text}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def shown_message(client, admin, conv_id: int, message_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    conv = (await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)).json()
    return next(m for m in conv["messages"] if m["id"] == message_id)


async def open_chat(client, admin, channel) -> int:  # type: ignore[no-untyped-def]
    assert (await customer_writes(client, channel, "Здравствуйте", message_id=1)).text == "ok"
    return int((await only_conversation(client, admin))["id"])


# --- Confirmation and verification ------------------------------------------------------------------------


async def test_confirmation_answers_the_code_as_plain_text(client, channel):
    r = await post(client, channel, {"type": "confirmation", "group_id": GROUP_ID})
    assert (r.status_code, r.text) == (200, CONFIRMATION)
    assert r.headers["content-type"].startswith("text/plain")
    with_secret = await post(client, channel, {"type": "confirmation", "group_id": GROUP_ID,
                                               "secret": secret_of(channel)})
    assert with_secret.text == CONFIRMATION
    other = await post(client, channel, {"type": "confirmation", "group_id": GROUP_ID + 1})
    assert other.status_code == 403 and other.json()["code"] == "wrong_vk_group"
    wrong = await post(client, channel, {"type": "confirmation", "group_id": GROUP_ID, "secret": "nope"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "invalid_vk_secret"


async def test_a_wrong_or_missing_secret_or_another_community_is_refused_and_nothing_stored(client, runtime,
                                                                                            channel):
    obj = message_new(from_id=CUSTOMER, text="hi", message_id=5)
    for body in (event("message_new", obj, secret="0" * 32, event_id="e1"),
                 {k: v for k, v in event("message_new", obj, secret="x", event_id="e1").items() if k != "secret"},
                 event("message_new", obj, secret=secret_of(channel), event_id="e1", group_id=GROUP_ID + 1)):
        r = await post(client, channel, body)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"].endswith(".")
    assert await count(runtime, InboundEvent) == 0


async def test_setup_instructions_name_the_webhook_and_the_secret(client, admin, channel):
    shown = (await client.get(f"/api/v1/channels/{channel['id']}", headers=admin.headers)).json()
    assert shown["webhook_url"] in shown["setup"] and "secret_key" in shown["setup"]
    assert shown["credential_fields"] == ["access_token", "secret_key"]
    assert TOKEN not in json.dumps(shown)


# --- Inbound --------------------------------------------------------------------------------------------


async def test_a_message_opens_a_conversation_and_its_redelivery_is_a_no_op(client, admin, runtime, channel):
    first = await customer_writes(client, channel, "Где мой заказ?", message_id=77, event_id="e" * 40)
    # VK redelivers the same event (after a timeout on its side) with X-Retry-Counter.
    body = event("message_new", message_new(from_id=CUSTOMER, text="Где мой заказ?", message_id=77),
                 secret=secret_of(channel), event_id="e" * 40)
    again = await post(client, channel, body, **{"X-Retry-Counter": "1"})
    assert (first.status_code, first.text) == (again.status_code, again.text) == (200, "ok")
    assert first.headers["content-type"].startswith("text/plain")
    conv = await only_conversation(client, admin)
    assert [m["text"] for m in conv["messages"]] == ["Где мой заказ?"]
    assert conv["contact"]["identities"][0]["external_id"] == str(CUSTOMER)
    assert conv["contact"]["language"] == "ru"
    assert await count(runtime, InboundEvent) == 1
    assert await count(runtime, Message) == 1


async def test_a_keyboard_press_arrives_as_a_button(client, admin, channel):
    await customer_writes(client, channel, "Да", message_id=10, payload='{"button":"yes"}')
    press = event("message_event", {"user_id": CUSTOMER, "peer_id": CUSTOMER, "event_id": "3bd6fc2c1c24",
                                    "payload": {"button": "later"}, "conversation_message_id": 11},
                  secret=secret_of(channel), event_id="f" * 40)
    for _ in range(2):
        assert (await post(client, channel, press)).text == "ok"
    messages = (await only_conversation(client, admin))["messages"]
    assert [(m["text"], m["payload"].get("button")) for m in messages] == [("Да", "yes"), ("later", "later")]


async def test_an_edit_replaces_the_text_and_keeps_the_original(client, admin, channel):
    await customer_writes(client, channel, "Заказ 123", message_id=20)
    edited = message_new(from_id=CUSTOMER, text="Заказ 124", message_id=20)["message"]
    body = event("message_edit", edited, secret=secret_of(channel), event_id="d" * 40)
    for _ in range(2):
        assert (await post(client, channel, body)).text == "ok"
    (msg,) = (await only_conversation(client, admin))["messages"]
    assert msg["text"] == "Заказ 124"
    assert [e["text"] for e in msg["payload"]["edits"]] == ["Заказ 123"]


async def test_photos_and_documents_are_downloaded_with_the_message(client, admin, vk, channel):
    small, large = vk.photo("small.jpg", b"tiny"), vk.photo("large.jpg", b"\xff\xd8 large photo bytes")
    doc = vk.doc("invoice.pdf", b"%PDF-1.4 invoice")
    attachments = [photo_attachment(small, large), doc_attachment(doc, "invoice", "pdf", 16)]
    await customer_writes(client, channel, "Смотрите", message_id=30, attachments=attachments)
    await customer_writes(client, channel, "Смотрите", message_id=30, attachments=attachments)
    (msg,) = (await only_conversation(client, admin))["messages"]
    files = {a["filename"]: a for a in msg["attachments"]}
    assert set(files) == {"photo_100500_457239017.jpg", "invoice.pdf"}
    photo = await client.get(f"/api/v1/attachments/{files['photo_100500_457239017.jpg']['id']}", headers=admin.headers)
    assert photo.content == b"\xff\xd8 large photo bytes", "the largest size is the one kept"
    pdf = await client.get(f"/api/v1/attachments/{files['invoice.pdf']['id']}", headers=admin.headers)
    assert pdf.content == b"%PDF-1.4 invoice"
    assert "/doc/invoice.pdf" in vk.file_requests, "document links redirect to storage and are followed"


async def test_stickers_show_as_a_placeholder_and_group_chats_and_other_events_are_ignored(client, admin, runtime,
                                                                                           channel):
    sticker = [{"type": "sticker", "sticker": {"product_id": 1, "sticker_id": 9}}]
    await customer_writes(client, channel, "", message_id=40, attachments=sticker)
    chat = event("message_new", message_new(from_id=CUSTOMER, text="в беседе", message_id=0, peer_id=2000000066),
                 secret=secret_of(channel), event_id="c" * 40)
    typing = event("message_typing_state", {"state": "typing", "from_id": CUSTOMER, "to_id": -GROUP_ID},
                   secret=secret_of(channel), event_id="b" * 40)
    for body in (chat, typing):
        r = await post(client, channel, body)
        assert (r.status_code, r.text) == (200, "ok")
    (msg,) = (await only_conversation(client, admin))["messages"]
    assert msg["text"] == "[sticker]" and msg["payload"]["vk_attachments"] == ["sticker"]


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'{"type": 5}', b'{"group_id": 1}', b"[" * 30000 + b"]" * 30000,
    b'{"type": "message_new", "group_id": %d, "secret": "\\ud800"}' % GROUP_ID,
])
async def test_malformed_bodies_are_client_errors(client, channel, body):
    r = await client.post(f"/webhooks/{channel['id']}", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text


async def test_an_event_without_event_id_says_which_api_version_to_choose(client, channel):
    body = event("message_new", message_new(from_id=CUSTOMER, text="hi", message_id=1), secret=secret_of(channel),
                 event_id="x")
    del body["event_id"]
    r = await post(client, channel, body)
    assert r.status_code == 422 and "5.199" in r.json()["detail"]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                               max_size=5), max_leaves=20)
_vk_keys = st.sampled_from(["message", "from_id", "peer_id", "id", "text", "payload", "attachments", "date",
                            "conversation_message_id", "user_id", "client_info", "out", "type", "photo", "doc",
                            "sizes", "url"])
_vk_object = st.recursive(_json, lambda inner: st.dictionaries(_vk_keys, inner, max_size=6), max_leaves=25)


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["message_new", "message_edit", "message_event", "confirmation", "wall_post_new"]),
       obj=_vk_object, event_id=_json, junk=st.booleans())
async def test_arbitrary_callback_bodies_never_give_a_server_error(client, channel, kind, obj, event_id, junk):
    body: Any = {"type": kind, "group_id": GROUP_ID, "secret": secret_of(channel), "event_id": event_id,
                 "object": obj}
    if junk:
        body = obj
    r = await post(client, channel, body)
    assert r.status_code < 500, r.text


# --- Outbound -------------------------------------------------------------------------------------------


async def test_a_reply_reaches_vk_with_a_random_id_and_the_community_token(client, admin, runtime, vk, channel,
                                                                         worker):
    conv = await open_chat(client, admin, channel)
    sent = await reply(client, admin, conv, "Добрый день! Заказ в пути.")
    assert await worker.run_due() == 1
    (call,) = vk.calls
    assert call.params["peer_id"] == str(CUSTOMER) and call.params["v"] == "5.199"
    assert call.params["access_token"] == TOKEN and "keyboard" not in call.params
    assert 0 < int(call.params["random_id"]) < 2**31
    (delivered,) = vk.delivered
    assert delivered.text == "Добрый день! Заказ в пути."
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "sent"
    async with runtime.db.read() as s:
        assert await s.scalar(select(Message.provider_message_id).where(Message.id == sent["id"])) == \
            str(delivered.message_id)


async def test_buttons_go_as_an_inline_keyboard_and_a_press_comes_back(client, admin, runtime, vk, channel, worker):
    conv = await open_chat(client, admin, channel)
    sent = await reply(client, admin, conv, "Подходит время доставки?")

    async def offer(tx):  # type: ignore[no-untyped-def]
        msg = await tx.session.get(Message, sent["id"])
        msg.payload = {"buttons": [{"id": "yes", "label": "Да"}, {"id": "no", "label": "Нет, " + "позже " * 10}]}

    await runtime.db.write(offer)
    await worker.run_due()
    (delivered,) = vk.delivered
    assert delivered.keyboard is not None and delivered.keyboard["inline"] is True
    rows = delivered.keyboard["buttons"]
    assert len(rows) == 2 and [b["action"]["label"] for b in rows[0]] == ["Да"], "one button per row"
    assert len(rows[1][0]["action"]["label"]) <= 40 and rows[1][0]["action"]["label"].endswith("…")
    assert json.loads(rows[0][0]["action"]["payload"]) == {"button": "yes"}
    # The customer presses "Да": VK sends the label as a message with the button's payload.
    await customer_writes(client, channel, "Да", message_id=2, payload=rows[0][0]["action"]["payload"])
    last = (await only_conversation(client, admin))["messages"][-1]
    assert (last["text"], last["payload"]["button"]) == ("Да", "yes")


def test_many_buttons_fit_the_inline_limits_and_the_rest_become_numbered_lines():
    buttons = tuple(Button(id=f"b{n}", label=f"Вариант {n}") for n in range(1, 13))
    kb = json.loads(outbound.keyboard(buttons))
    assert len(kb["buttons"]) <= 6 and sum(len(r) for r in kb["buttons"]) == 10
    assert outbound.overflow_lines(buttons) == "11. Вариант 11\n12. Вариант 12"
    with pytest.raises(SendError) as err:
        outbound.keyboard((Button(id="x" * 300, label="long"),))
    assert not err.value.retryable


async def test_a_long_reply_is_split_and_a_resend_after_a_crash_is_dropped_by_vk(client, admin, runtime, vk, channel,
                                                                              worker, clock, monkeypatch):
    conv = await open_chat(client, admin, channel)
    text = " ".join(f"слово{n}" for n in range(1200))  # about 9,000 characters: three pieces
    sent = await reply(client, admin, conv, text)
    real = outbox_module.do_record_outcome
    calls = {"n": 0}

    async def crash_once(tx, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died after VK accepted the message")
        return await real(tx, **kw)

    monkeypatch.setattr(outbox_module, "do_record_outcome", crash_once)
    await worker.run_due()
    pieces = [d.text for d in vk.delivered]
    assert len(pieces) == 3 and all(len(p) <= 4096 for p in pieces)
    assert " ".join(pieces) == text, "pieces are cut between words, nothing lost"
    first_ids = [int(c.params["random_id"]) for c in vk.calls]
    assert len(set(first_ids)) == 3 and 0 not in first_ids
    clock.tick(worker.lease.total_seconds() + 1)
    successor = OutboxWorker(runtime, name="vk-successor")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    assert [int(c.params["random_id"]) for c in vk.calls] == first_ids * 2, "the resend reuses each random_id"
    assert len(vk.delivered) == 3, "VK dropped the resent pieces"
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


async def test_too_many_requests_is_retried_after_a_second(client, admin, vk, channel, worker, clock):
    conv = await open_chat(client, admin, channel)
    sent = await reply(client, admin, conv, "hello")
    vk.fail(6, (502, "<html>Bad Gateway</html>"))
    await worker.run_due()
    assert len(vk.calls) == 1 and vk.delivered == []
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "queued"
    assert await worker.run_due() == 0, "not before the wait"
    clock.tick(7)  # the outbox waits at least VK's second and its own first backoff (5 s ± 20 %)
    await worker.run_due()
    assert len(vk.calls) == 2 and vk.delivered == [], "a 502 is retried as well"
    clock.tick(30)
    await worker.run_due()
    assert [d.text for d in vk.delivered] == ["hello"]
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


@pytest.mark.parametrize(("code", "words"), [
    (901, "has not allowed messages from the community"),
    (5, "community token is invalid"),
    (7, "'messages' permission"),
    (15, "denied access"),
])
async def test_permanent_errors_fail_the_reply_with_a_sentence(client, admin, vk, channel, worker, clock, code,
                                                               words):
    conv = await open_chat(client, admin, channel)
    sent = await reply(client, admin, conv, "hello")
    vk.fail(code)
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed"
    assert f"VK error {code}" in shown["status_reason"] and words in shown["status_reason"]
    clock.tick(3600)
    assert await worker.run_due() == 0 and len(vk.calls) == 1


async def test_a_wrong_token_is_reported_by_the_fake_as_vk_does(client, admin, runtime, vk, channel, worker):
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"credentials": {"access_token": "vk1.a.revoked-token-000000000"}})
    assert r.status_code == 200, r.text
    conv = await open_chat(client, admin, channel)
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed" and "invalid access_token" in shown["status_reason"]


# --- Files on agents' replies ----------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
GIF = b"GIF89a" + b"\x01" * 100


class ProcessDied(BaseException):
    """The worker's process stops mid-send (not an Exception: nothing in the process handles it)."""


async def reply_with_file(client, admin, conv_id: int, filename: str, data: bytes, content_type: str,  # type: ignore[no-untyped-def]
                          text: str = "") -> dict[str, Any]:
    r = await client.post(f"/api/v1/conversations/{conv_id}/attachments", headers=admin.headers,
                          files={"file": (filename, data, content_type)}, data={"text": text} if text else {})
    assert r.status_code == 201, r.text
    return dict(r.json())


def methods(vk: FakeVk) -> list[str]:
    return [c.method for c in vk.calls]


def vk_config(vk: FakeVk) -> ChannelConfig:
    return ChannelConfig(id=1, type="vk", name="VK", enabled=True,
                         settings={"api_base_url": vk.url, "group_id": GROUP_ID, "confirmation_code": CONFIRMATION},
                         credentials={"access_token": TOKEN, "secret_key": "s" * 32})


def outbound_message(text: str, files: tuple[OutboundAttachment, ...] = (),
                     buttons: tuple[Button, ...] = ()) -> OutboundMessage:
    return OutboundMessage(id=5, idempotency_key=f"msg_5_{len(text)}_{len(files)}", conversation_id=1,
                           to=str(CUSTOMER), text=text, kind="text", created_at=dt.datetime(2031, 3, 1, tzinfo=dt.UTC),
                           attachments=files, buttons=buttons)


def stored_file(tmp_path: Path, n: int, filename: str, data: bytes, content_type: str) -> OutboundAttachment:
    path = tmp_path / f"stored-{n}"
    path.write_bytes(data)
    return OutboundAttachment(id=n, filename=filename, content_type=content_type, size=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), url=f"http://testserver/api/v1/attachments/{n}",
                              path=path)


async def test_a_photo_goes_through_the_upload_server_with_the_text(client, admin, runtime, vk, channel, worker):
    conv = await open_chat(client, admin, channel)
    sent = await reply_with_file(client, admin, conv, "фото.jpg", JPEG, "image/jpeg", "Вот фото посылки")
    assert await worker.run_due() == 1
    assert methods(vk) == ["photos.getMessagesUploadServer", "photos.saveMessagesPhoto", "messages.send"]
    server_call, save_call, send_call = vk.calls
    assert server_call.params["peer_id"] == str(CUSTOMER) and server_call.params["access_token"] == TOKEN
    (upload,) = vk.uploads
    assert upload.kind == "photo" and upload.fields["photo"]["data"] == JPEG
    assert save_call.params["hash"] == upload.answer["hash"] and save_call.params["photo"] == upload.answer["photo"]
    (delivered,) = vk.delivered
    assert delivered.text == "Вот фото посылки"
    (reference,) = delivered.attachments
    assert reference.startswith(f"photo-{GROUP_ID}_") and reference == send_call.params["attachment"]
    photo = vk.file_of(reference)
    assert (photo.kind, photo.data) == ("photo", JPEG), "the customer sees the exact bytes the agent attached"
    assert reference.endswith(f"_{photo.access_key}"), "the access key travels with the reference"
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


@pytest.mark.parametrize("filename,data,content_type,kind", [
    ("Счёт 42.pdf", b"%PDF-1.4 invoice", "application/pdf", "doc"), ("scan.png", PNG, "image/png", "photo"),
    ("anim.gif", GIF, "image/gif", "doc"), ("archive.zip", b"PK\x03\x04 zip", "application/zip", "doc"),
])
async def test_pictures_go_as_photos_and_other_files_as_documents_with_their_name(client, admin, vk, channel, worker,
                                                                                 filename, data, content_type, kind):
    conv = await open_chat(client, admin, channel)
    await reply_with_file(client, admin, conv, filename, data, content_type)
    await worker.run_due()
    (delivered,) = vk.delivered
    assert delivered.text == "", "a file alone needs no text"
    saved = vk.file_of(delivered.attachments[0])
    assert (saved.kind, saved.data) == (kind, data)
    if kind == "doc":
        assert methods(vk) == ["docs.getMessagesUploadServer", "docs.save", "messages.send"]
        assert vk.calls[0].params["type"] == "doc" and vk.calls[0].params["peer_id"] == str(CUSTOMER)
        assert vk.calls[1].params["title"] == filename and saved.filename == filename
        assert vk.uploads[0].fields["file"]["filename"] == filename


async def test_files_ride_on_the_first_piece_ten_at_a_time_and_buttons_on_the_last(vk, tmp_path):
    files = tuple(stored_file(tmp_path, n, f"page{n}.png", PNG + bytes([n]), "image/png") for n in range(1, 13))
    text = " ".join(f"слово{n}" for n in range(900))  # two pieces
    async with httpx.AsyncClient() as http:
        result = await get_adapter("vk").send(vk_config(vk), outbound_message(text, files, (Button("ok", "OK"),)), http)
    first, second, extra = vk.delivered
    assert len(first.attachments) == 10 and second.attachments == [] and len(extra.attachments) == 2
    assert first.text and second.text and extra.text == ""
    assert [d.keyboard is not None for d in vk.delivered] == [False, False, True]
    assert [vk.file_of(r).data for d in vk.delivered for r in d.attachments] == [f.path.read_bytes() for f in files]
    assert len({d.random_id for d in vk.delivered}) == 3
    assert result.provider_message_id == str(extra.message_id)


async def test_a_file_over_vks_limit_fails_with_the_limit_and_is_never_read(client, admin, runtime, vk, channel,
                                                                           worker, monkeypatch):
    conv = await open_chat(client, admin, channel)
    sent = await reply_with_file(client, admin, conv, "video.mov", b"\x00\x00\x00\x14ftypqt", "video/quicktime",
                                 "Видео")
    huge = 200 * 1024 * 1024 + 1

    async def grow(tx):  # type: ignore[no-untyped-def]
        att = (await tx.session.execute(select(Attachment).where(Attachment.message_id == sent["id"]))).scalar_one()
        att.size = huge
        with file_store(runtime).path(att.storage_key).open("r+b") as fh:
            fh.truncate(huge)  # sparse: as large on disk as the row says, at no cost

    await runtime.db.write(grow)

    def no_reading(self: Path) -> bytes:
        raise AssertionError(f"{self} was read although it is over VK's limit")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed"
    assert shown["status_reason"] == ("VK takes files of at most 200 MB; 'video.mov' is 200.1 MB — send a smaller "
                                      "file or a link")
    assert vk.calls == [] and vk.uploads == [], "nothing went out, not even the text"


async def test_mp3_and_executables_are_refused_before_anything_goes_out(vk, tmp_path):
    for n, (name, ctype) in enumerate([("song.mp3", "audio/mpeg"), ("setup.exe", "application/octet-stream")]):
        with pytest.raises(SendError) as err:
            async with httpx.AsyncClient() as http:
                await get_adapter("vk").send(vk_config(vk), outbound_message("hi", (
                    stored_file(tmp_path, n, name, b"data", ctype),)), http)
        assert not err.value.retryable and "MP3 or executable" in err.value.reason and name in err.value.reason
    assert vk.calls == []


async def test_an_upload_server_failure_is_retried_and_the_file_goes_once(client, admin, runtime, vk, channel, worker,
                                                                        clock):
    conv = await open_chat(client, admin, channel)
    sent = await reply_with_file(client, admin, conv, "act.pdf", b"%PDF-1.4 act", "application/pdf", "Акт")
    vk.fail_upload((502, "<html>Bad Gateway</html>"))
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "queued" and vk.delivered == []
    vk.fail(10)  # VK's own trouble on the next call (the upload server address) is retried as well
    clock.tick(7)
    await worker.run_due()
    assert vk.delivered == []
    clock.tick(60)
    await worker.run_due()
    (delivered,) = vk.delivered
    assert delivered.text == "Акт" and vk.file_of(delivered.attachments[0]).data == b"%PDF-1.4 act"
    assert [u.answer for u in vk.uploads][:1] == ["<html>Bad Gateway</html>"] and len(vk.uploads) == 2
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


async def test_a_retry_after_a_failed_send_reuses_the_upload(vk, tmp_path):
    message = outbound_message("Фото", (stored_file(tmp_path, 1, "a.jpg", JPEG, "image/jpeg"),))
    vk.fail_method("messages.send", 9)  # flood control once the photo is saved
    adapter = get_adapter("vk")
    async with httpx.AsyncClient() as http:
        with pytest.raises(SendError) as err:
            await adapter.send(vk_config(vk), message, http)
        assert err.value.retryable and "flood control" in err.value.reason
        result = await adapter.send(vk_config(vk), message, http)
    assert methods(vk) == ["photos.getMessagesUploadServer", "photos.saveMessagesPhoto", "messages.send",
                           "messages.send"], "the photo is not uploaded twice"
    (delivered,) = vk.delivered
    assert vk.file_of(delivered.attachments[0]).data == JPEG and result.provider_message_id == str(delivered.message_id)


async def test_a_crash_between_the_upload_and_the_send_does_not_lose_the_file(client, admin, runtime, vk, channel,
                                                                             worker, clock, monkeypatch):
    conv = await open_chat(client, admin, channel)
    sent = await reply_with_file(client, admin, conv, "contract.pdf", b"%PDF-1.7 contract" * 100, "application/pdf",
                                 "Договор")
    real = vk_media.call

    async def dies_before_sending(client, api, method, params, **kw):  # type: ignore[no-untyped-def]
        if method == "messages.send":
            raise ProcessDied()
        return await real(client, api, method, params, **kw)

    monkeypatch.setattr(vk_media, "call", dies_before_sending)
    with pytest.raises(ProcessDied):
        await worker.run_due()
    assert methods(vk) == ["docs.getMessagesUploadServer", "docs.save"] and vk.delivered == []
    monkeypatch.setattr(vk_media, "call", real)
    get_adapter("vk")._uploaded.clear()  # type: ignore[attr-defined]  # a new process remembers nothing
    clock.tick(worker.lease.total_seconds() + 1)
    successor = OutboxWorker(runtime, name="vk-successor")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    (delivered,) = vk.delivered
    assert delivered.text == "Договор"
    assert vk.file_of(delivered.attachments[0]).data == b"%PDF-1.7 contract" * 100, "uploaded again from our disk"
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


async def test_a_resend_after_a_crash_past_the_send_is_dropped_by_vk(client, admin, runtime, vk, channel, worker,
                                                                   clock, monkeypatch):
    conv = await open_chat(client, admin, channel)
    sent = await reply_with_file(client, admin, conv, "a.png", PNG, "image/png", "Схема")
    real = outbox_module.do_record_outcome
    calls = {"n": 0}

    async def crash_once(tx, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died after VK accepted the message")
        return await real(tx, **kw)

    monkeypatch.setattr(outbox_module, "do_record_outcome", crash_once)
    await worker.run_due()
    clock.tick(worker.lease.total_seconds() + 1)
    successor = OutboxWorker(runtime, name="vk-successor")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    sends = [c for c in vk.calls if c.method == "messages.send"]
    assert len(sends) == 2 and sends[0].params["random_id"] == sends[1].params["random_id"]
    assert len(vk.delivered) == 1, "VK dropped the resend, though its photo was uploaded again"
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


async def test_vks_refusals_of_a_file_fail_the_reply_with_a_sentence(client, admin, vk, channel, worker):
    conv = await open_chat(client, admin, channel)
    not_a_picture = await reply_with_file(client, admin, conv, "broken.jpg", b"not really a jpeg", "image/jpeg")
    await worker.run_due()
    shown = await shown_message(client, admin, conv, not_a_picture["id"])
    assert shown["status"] == "failed" and shown["status_reason"].startswith(
        "VK did not take 'broken.jpg' as a photo (VK takes JPEG, PNG or GIF pictures")
    refused = await reply_with_file(client, admin, conv, "data.bin", b"\x00\x01", "application/octet-stream")
    vk.fail_upload((200, json.dumps({"error": "ERR_UPLOAD_BAD_FILE_TYPE", "error_code": 3,
                                     "error_descr": "file type is not allowed"})))
    await worker.run_due()
    shown = await shown_message(client, admin, conv, refused["id"])
    assert (shown["status"], shown["status_reason"]) == (
        "failed", "VK's upload server refused 'data.bin': file type is not allowed")
    assert vk.delivered == []


# --- Pure helpers ---------------------------------------------------------------------------------------


def test_random_ids_are_stable_distinct_per_piece_positive_int32():
    ids = [outbound.random_id("msg_1_1900000000", n) for n in range(50)]
    assert ids == [outbound.random_id("msg_1_1900000000", n) for n in range(50)]
    assert len(set(ids)) == 50 and all(0 < i <= 2**31 - 1 for i in ids)
    assert outbound.random_id("msg_2_1900000000", 0) != ids[0]


@examples(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab \n.😀"), max_size=400), limit=st.integers(2, 50))
def test_split_text_keeps_every_word_and_respects_the_limit(text, limit):
    for size in (len, utf16_length):
        pieces = split_text(text, limit, size=size)
        assert all(0 < size(p) <= limit for p in pieces)
        assert "".join("".join(pieces).split()) == "".join(text.split()), "no character but spaces is lost"


def test_split_text_prefers_paragraphs_then_sentences_then_words():
    text = "Первый абзац.\n\nВторой абзац, подлиннее. И ещё предложение."
    assert split_text(text, 30) == ["Первый абзац.", "Второй абзац, подлиннее.", "И ещё предложение."]
    assert split_text("a" * 10, 4) == ["aaaa", "aaaa", "aa"]
    assert split_text("   ", 4) == []


async def test_the_type_is_offered_with_its_settings_and_credentials(client, admin):
    import kommutator.channels.types.vk as package

    assert package.__all__ == ["VkChannel"]
    types = {t["type"]: t for t in (await client.get("/api/v1/channel-types", headers=admin.headers)).json()}
    assert set(types["vk"]["settings_schema"]["required"]) == {"group_id", "confirmation_code"}
    assert set(types["vk"]["credentials_schema"]["properties"]) == {"access_token", "secret_key"}
