"""The WhatsApp Cloud API channel as its users meet it: Meta's signed webhooks (every real payload fixture,
each delivered twice) become conversations, statuses and files; agents' replies go out through a fake Graph
API on 127.0.0.1 that enforces WhatsApp's limits, errors and 24-hour rule; time moves with the test clock.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select

from kommutator.channels.base import (
    Button,
    ChannelConfig,
    InboundEdit,
    InboundMessage,
    InboundRequest,
    InboundStatus,
    OutboundAttachment,
    OutboundMessage,
    SendError,
)
from kommutator.channels.registry import get_adapter
from kommutator.channels.text import utf16_length as utf16_len
from kommutator.channels.types import whatsapp
from kommutator.channels.types.whatsapp import graph
from kommutator.channels.types.whatsapp.composing import WINDOW_CLOSED, WINDOW_CLOSED_FILES, split_text
from kommutator.clock import now
from kommutator.conversations.models import Message
from kommutator.errors import ProblemError
from kommutator.ingest.models import InboundEvent
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker

from .fakes.whatsapp import ACCESS_TOKEN, APP_SECRET, CUSTOMER, PHONE_NUMBER_ID, Answer, FakeWhatsApp

FIXTURES = Path(os.environ.get("KOMMUTATOR_WHATSAPP_FIXTURES",
                               Path(__file__).resolve().parents[2] / "shared" / "data" / "whatsapp-cloud"))
MEDIA = {"65463453": (b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg"),
         "765756756": (b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
         "1234567890987654321": (b"%PDF-1.7 or ogg or webp", "application/octet-stream")}


# --- The real payloads and what each must become ---------------------------------------------------------

def _payloads(name: str, node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every webhook body in a fixture file (some files nest one inside another)."""
    if isinstance(node, dict) and "entry" in node and "object" in node:
        yield f"{name}{path}", node
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in ("entry", "object"):
                yield from _payloads(name, value, f"{path}/{key}")


def fixture_cases() -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    for file in sorted(FIXTURES.glob("*.json")):
        cases.update(_payloads(file.stem, json.loads(file.read_text())))
    return cases


CASES = fixture_cases()


def M(text: str, button: str | None = None, files: tuple[str, ...] = ()) -> tuple[Any, ...]:
    return ("message", text, button, files)


def S(wamid: str, status: str) -> tuple[Any, ...]:
    return ("status", wamid, status)


def E(original: str, text: str) -> tuple[Any, ...]:
    return ("edit", original, text)


MEDIA_ID = "1234567890987654321"
# What each real payload means; a new fixture fails test_every_fixture_is_described until it is added here.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    **{case: [] for case in CASES if case.split("/")[0] in (
        "account_update", "call_connect", "call_status", "call_terminate", "outgoing_message",
        "template_category_update", "template_components_update", "template_quality_update",
        "template_status_update", "user_marketing_preferences")},
    "call_permission_update/accept": [M("[call permission: accept]")],
    "call_permission_update/reject": [M("[call permission: reject]")],
    "callback_button/button": [M("title", "callback_data")],
    "callback_button/quick_reply": [M("title", "callback_data")],
    "callback_button/quick_reply_without_context": [M("title", "callback_data")],
    "callback_selection/callback": [M("title", "callback_data")],
    "callback_selection/description": [M("title", "callback_data")],
    "deleted_message/revoke": [E("<ORIGINAL_WHATSAPP_MESSAGE_ID>", "[the customer deleted this message]")],
    "edited_message/image": [E("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=",
                               "Updated image caption")],
    "flow_completion/completion": [M("[form flow submitted]\ncomment_text: Comment Text\ndelivery_rating: 4\n"
                                     "purchase_rating: 2\nrecommend_radio: 0\ncs_rating: 0")],
    "flow_completion/without_flow_token": [M("[form flow submitted]\ncomment_text: Comment Text\n"
                                             "delivery_rating: 4\npurchase_rating: 2\nrecommend_radio: 0\n"
                                             "cs_rating: 0")],
    "message/text": [M("Body Text")],
    "message/image": [M("", files=("image-65463453.jpg",))],
    "message/media_with_url": [M("", files=("image-65463453.jpg",))],
    "message/video": [M("caption", files=("video-765756756.mp4",))],
    "message/document": [M("caption", files=("filename.pdf",))],
    "message/audio": [M("", files=(f"audio-{MEDIA_ID}.ogg",))],
    "message/voice": [M("", files=(f"voice-{MEDIA_ID}.ogg",))],
    "message/static_sticker": [M("", files=(f"sticker-{MEDIA_ID}.webp",))],
    "message/animated_sticker": [M("", files=(f"sticker-{MEDIA_ID}.webp",))],
    "message/reaction": [M("[reaction: 😮]")],
    "message/unreaction_empty": [],
    "message/unreaction_no_emoji": [],
    "message/current_location": [M("[location] https://maps.google.com/?q=12.25089,43.90539")],
    "message/chosen_location": [M("[location] Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 "
                                  "https://maps.google.com/?q=37.4611978,-122.2164385")],
    "message/contacts": [M("[shared contacts]\nChandler Bing: +1 555-555-5555\nMonica: +1 666-666-6666\n"
                           "Rachel Green: +1 777-777-7777")],
    "message/order": [M("[order]\n3 × HAMBURGER at 30 ILS\n2 × FRENCH_FRIES at 35 ILS\n2 × SODA at 10 ILS")],
    "message/unsupported": [M("[unsupported message type: unknown]")],
    "message/unsupported_with_type": [M("[unsupported message type: pool]")],
    "message/reply": [M("replied text")],
    "message/forwarded": [M("forwarded text")],
    "message/forwarded_many_times": [M("text forwarded many times")],
    "message/interactive_message_with_err": [M("[unsupported message type: interactive]")],
    "message/referral": [M("BODY")],
    "message_status/sent": [S("wamid.xyzxyz", "sent")],
    "message_status/delivered": [S("wamid.xyzxyz", "delivered")],
    "message_status/read": [S("wamid.xyzxyz", "read")],
    "message_status/played": [S("wamid.xyzxyz", "read")],
    "message_status/failed": [S("wamid.xyzxyz", "failed")],
    "message_status/with_tracker": [S("wamid.xyzxyz", "sent")],
    "message_status/group": [S("<WHATSAPP_MESSAGE_ID>", "read")],
    "system/phone_number_change": [M("[WhatsApp: User A changed from 972987654321 to 972912345678]")],
    "system/identity_change": [M("[WhatsApp: User identity changed]")],
}


def for_our_number(payload: dict[str, Any]) -> dict[str, Any]:
    """The fixture as if sent to our channel's number (the examples use several numbers and placeholders)."""
    payload = copy.deepcopy(payload)
    for entry in payload["entry"]:
        for change in entry["changes"]:
            metadata = change.get("value", {}).get("metadata")
            if isinstance(metadata, dict):
                metadata["phone_number_id"] = PHONE_NUMBER_ID
    return payload


def summary(item: Any) -> tuple[Any, ...]:
    if isinstance(item, InboundMessage):
        return M(item.text, item.button, tuple(f.filename for f in item.files))
    if isinstance(item, InboundStatus):
        return S(item.provider_message_id, item.status)
    assert isinstance(item, InboundEdit)
    return E(item.provider_message_id, item.text)


def config(**settings: Any) -> ChannelConfig:
    return ChannelConfig(id=1, type="whatsapp", name="WA", settings={"phone_number_id": PHONE_NUMBER_ID, **settings},
                         credentials={"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET,
                                      "verify_token": "kwv_" + "v" * 40}, enabled=True)


def parse(payload: dict[str, Any] | bytes) -> list[Any]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = InboundRequest(method="POST", url="http://testserver/webhooks/1", headers={}, query={}, body=body)
    return get_adapter("whatsapp").parse(config(), request)


# --- Fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    server = FakeWhatsApp()
    for media_id, (data, mime) in MEDIA.items():
        server.add_media(media_id, data, mime)
    await server.start()
    yield server
    await server.stop()


async def create_channel(client: httpx.AsyncClient, admin: Any, fake: FakeWhatsApp, **settings: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "whatsapp", "name": "WhatsApp +1 555 078 3881",
        "settings": {"api_base_url": fake.base_url, "phone_number_id": PHONE_NUMBER_ID, **settings},
        "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def channel(client, admin, fake) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return await create_channel(client, admin, fake)


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="wa-worker")
    yield w
    await w.stop()


def hook(channel: dict[str, Any]) -> str:
    return f"/webhooks/{channel['id']}"


async def conversations(client: httpx.AsyncClient, admin: Any) -> list[dict[str, Any]]:
    listed = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]
    return [(await client.get(f"/api/v1/conversations/{c['id']}", headers=admin.headers)).json() for c in listed]


async def open_chat(client, admin, fake, channel, text: str = "Здравствуйте, где мой заказ?") -> int:  # type: ignore[no-untyped-def]
    r = await fake.deliver(client, hook(channel), fake.text_payload(f"wamid.in-{len(fake.calls)}-{text[:5]}", text))
    assert r.status_code == 200, r.text
    (conv,) = await conversations(client, admin)
    return int(conv["id"])


async def reply(client, admin, conversation: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conversation}/messages", json={"text": text},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def shown(client, admin, conversation: int, message_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    detail = (await client.get(f"/api/v1/conversations/{conversation}", headers=admin.headers)).json()
    return next(m for m in detail["messages"] if m["id"] == message_id)


async def stored(runtime, message_id: int) -> Message:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        msg = await s.get(Message, message_id)
    assert msg is not None
    return msg


async def outbox_item(runtime, message_id: int) -> OutboxItem:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return (await s.execute(select(OutboxItem).where(OutboxItem.message_id == message_id))).scalar_one()


async def set_buttons(runtime, message_id: int, buttons: list[dict[str, str]]) -> None:  # type: ignore[no-untyped-def]
    """What a bot or macro does: offer choices with the reply (the REST reply has no buttons yet)."""
    async def job(tx):  # type: ignore[no-untyped-def]
        msg = await tx.session.get(Message, message_id)
        msg.payload = {**msg.payload, "buttons": buttons}

    await runtime.db.write(job)


# --- The channel and its set-up -------------------------------------------------------------------------


def test_the_package_exports_exactly_its_adapter_and_models():
    assert sorted(whatsapp.__all__) == ["WhatsAppChannel", "WhatsAppCredentials", "WhatsAppSettings"]
    adapter = get_adapter("whatsapp")
    assert isinstance(adapter, whatsapp.WhatsAppChannel)
    caps = adapter.capabilities
    assert (caps.max_text_length, caps.buttons, caps.max_buttons, caps.attachments, caps.reply_window,
            caps.messages_per_second) == (4096, True, 10, True, dt.timedelta(hours=24), 80)


async def test_a_channel_is_created_with_a_generated_verify_token_and_set_up_steps(client, admin, fake, channel):
    token = channel["generated_credentials"]["verify_token"]
    assert token.startswith("kwv_") and len(token) > 30
    assert channel["credential_fields"] == ["access_token", "app_secret", "verify_token"]
    assert channel["settings"] == {"api_base_url": f"{fake.base_url}/", "api_version": "v21.0",
                                   "phone_number_id": PHONE_NUMBER_ID, "template_language": "en_US",
                                   "template_text_parameter": False}
    assert ACCESS_TOKEN not in json.dumps(channel["settings"]) and token not in channel["setup"]
    assert channel["webhook_url"] in channel["setup"] and "messages" in channel["setup"]
    types = (await client.get("/api/v1/channel-types", headers=admin.headers)).json()
    schema = next(t for t in types if t["type"] == "whatsapp")["settings_schema"]
    assert schema["properties"]["api_base_url"]["default"] == "https://graph.facebook.com/"


async def test_settings_and_credentials_are_checked_at_creation(client, admin):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "whatsapp", "name": "WA", "settings": {"phone_number_id": "+1 555 078 3881"},
        "credentials": {"access_token": ACCESS_TOKEN, "app_secret": APP_SECRET}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "settings.phone_number_id"
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "whatsapp", "name": "WA", "settings": {"phone_number_id": PHONE_NUMBER_ID}, "credentials": {}})
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {
        "credentials.access_token", "credentials.app_secret"}


# --- Verification: the handshake and the signature ------------------------------------------------------


async def test_the_verification_handshake_echoes_the_challenge_only_for_our_token(client, channel):
    token = channel["generated_credentials"]["verify_token"]
    good = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158201444"}
    r = await client.get(hook(channel), params=good)
    assert (r.status_code, r.text) == (200, "1158201444")
    assert r.headers["content-type"].startswith("text/plain")
    for wrong in ({**good, "hub.verify_token": token + "x"}, {**good, "hub.mode": "unsubscribe"},
                  {"hub.challenge": "1158201444"}):
        r = await client.get(hook(channel), params=wrong)
        assert r.status_code == 403 and r.json()["code"] == "whatsapp_verify_token_mismatch", r.text
    r = await client.get(hook(channel), params={k: v for k, v in good.items() if k != "hub.challenge"})
    assert r.status_code == 400 and r.json()["code"] == "whatsapp_challenge_missing"


async def test_posts_without_a_valid_signature_are_refused_and_not_stored(client, runtime, fake, channel):
    payload = fake.text_payload("wamid.forged", "I am not Meta")
    body = json.dumps(payload).encode()
    r = await client.post(hook(channel), content=body, headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.json()["code"] == "whatsapp_signature_missing"
    for signature in (fake.sign(body, secret="another app's secret"), fake.sign(body + b" "),
                      fake.sign(body).replace("sha256=", "sha1="), "sha256=", "garbage"):
        r = await fake.deliver(client, hook(channel), body, signature=signature)
        assert r.status_code == 403 and r.json()["code"] == "whatsapp_signature_invalid", signature
        assert "app_secret" in r.json()["detail"]
    r = await fake.deliver(client, hook(channel), body, signature=fake.sign(body).upper().replace("SHA256", "sha256"))
    assert r.status_code == 200, "hex digits are compared case-insensitively"
    async with runtime.db.read() as s:
        assert len((await s.execute(select(InboundEvent))).scalars().all()) == 1


# --- Inbound: every real payload -----------------------------------------------------------------------


def test_every_fixture_is_described():
    assert FIXTURES.is_dir(), f"the WhatsApp payload fixtures are missing: {FIXTURES}"
    assert sorted(EXPECTED) == sorted(CASES), "describe each new fixture in EXPECTED (what it must become)"
    assert len(CASES) >= 70


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_parser_reads_each_fixture(case):
    items = parse(for_our_number(CASES[case]))
    assert [summary(i) for i in items] == EXPECTED[case]
    for item in items:
        if isinstance(item, InboundMessage):
            assert item.event_id == f"msg:{item.provider_message_id}"
            assert item.sender.external_id in ("972987654321", "<WHATSAPP_USER_PHONE_NUMBER>")
            if item.sender.external_id == "972987654321":
                assert item.sender.phone == "+972987654321"
        if isinstance(item, InboundStatus):
            assert item.event_id.startswith(f"status:{item.provider_message_id}:")


def test_parsed_messages_carry_the_sender_context_and_failure_reasons():
    (msg,) = parse(for_our_number(CASES["message/reply"]))
    assert (msg.sender.name, msg.sender.display, msg.sender.phone) == ("Test Name", "Test Name", "+972987654321")
    assert msg.payload == {"reply_to": "wamid.xyzxyz==", "type": "text"}
    assert msg.sent_at == dt.datetime(2023, 10, 11, 17, 19, 6, tzinfo=dt.UTC)
    (selection,) = parse(for_our_number(CASES["callback_selection/description"]))
    assert selection.payload["description"] == "description" and selection.payload["reply_to"] == "wamid.xyzxyz"
    (referral,) = parse(for_our_number(CASES["message/referral"]))
    assert referral.payload["referral"]["ctwa_clid"] == "CTWA_CLID"
    (voice,) = parse(for_our_number(CASES["message/voice"]))
    assert voice.files[0].content_type == "audio/ogg; codecs=opus" and voice.files[0].ref == MEDIA_ID
    (failed,) = parse(for_our_number(CASES["message_status/failed"]))
    assert failed.reason == ("WhatsApp could not deliver the message: User's number is part of an experiment; "
                             "Failed to send message because this user's phone number is part of an experiment "
                             "(error 130472)")
    (played,) = parse(for_our_number(CASES["message_status/played"]))
    assert (played.status, played.event_id) == ("read", "status:wamid.xyzxyz:played")


@pytest.mark.parametrize("case", sorted(c for c in CASES if EXPECTED.get(c)))
async def test_each_fixture_arrives_once_however_often_meta_delivers_it(client, admin, runtime, fake, channel, case):
    payload = for_our_number(CASES[case])
    expected = EXPECTED[case]
    first = await fake.deliver(client, hook(channel), payload)
    again = await fake.deliver(client, hook(channel), payload)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.json() == {"ok": True, "events": len(expected), "duplicates": 0}
    assert again.json() == {"ok": True, "events": len(expected), "duplicates": len(expected)}
    async with runtime.db.read() as s:
        events = (await s.execute(select(InboundEvent).where(InboundEvent.channel_id == channel["id"]))).scalars().all()
    assert len(events) == len(expected)
    convs = await conversations(client, admin)
    messages = [m for c in convs for m in c["messages"]]
    wanted = [e for e in expected if e[0] == "message"]
    assert [(m["text"], m["payload"].get("button"), tuple(a["filename"] for a in m["attachments"]))
            for m in messages] == [e[1:] for e in wanted]
    assert len(convs) == (1 if wanted else 0)
    for m in messages:
        for a in m["attachments"]:
            got = await client.get(f"/api/v1/attachments/{a['id']}", headers=admin.headers)
            assert got.content in {data for data, _ in MEDIA.values()}
    if any(e[0] == "status" for e in expected):
        assert {e.status for e in events} == {"unmatched"}, "a status for a message we never sent waits, unmatched"


async def test_events_of_another_phone_number_are_left_out(client, runtime, fake, channel):
    payload = fake.text_payload("wamid.other", "hello")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999"
    r = await fake.deliver(client, hook(channel), payload)
    assert r.json() == {"ok": True, "events": 0, "duplicates": 0}


@pytest.mark.parametrize("body,status", [
    (b"{not json", 400), (b"[]", 422), (b'{"entry": {}}', 422), (b'{"entry": [1]}', 422),
    (b'{"entry": [{"changes": [{"field": "messages", "value": {"messages": [{"type": "text"}]}}]}]}', 422),
    (b'{"entry": [{"changes": [{"field": "messages", "value": {"statuses": "sent"}}]}]}', 422),
])
async def test_bodies_that_are_not_webhooks_are_refused_with_4xx(client, fake, channel, body, status):
    r = await fake.deliver(client, hook(channel), body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=4), max_leaves=25)
_field = st.sampled_from(["messages", "statuses", "contacts", "metadata", "errors"]) | st.text(max_size=8)
_messageish = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=300) | _json, "from": st.text(max_size=30) | _json, "timestamp": _json,
    "type": st.sampled_from(["text", "interactive", "button", "image", "document", "location", "contacts",
                             "reaction", "order", "system", "edit", "revoke", "unsupported"]) | _json,
    "text": _json, "interactive": _json, "image": _json, "edit": _json, "revoke": _json, "contacts": _json,
    "reaction": _json, "context": _json, "status": st.sampled_from(list(whatsapp.parsing.STATUSES)) | _json,
    "errors": _json, "order": _json, "location": _json, "button": _json})
_webhookish = st.fixed_dictionaries({"object": st.just("whatsapp_business_account"), "entry": st.lists(
    st.fixed_dictionaries({"changes": st.lists(st.fixed_dictionaries({
        "field": st.just("messages") | st.text(max_size=8),
        "value": st.dictionaries(_field, st.lists(_messageish | _json, max_size=3) | _json, max_size=4)}),
        max_size=3)}), max_size=2)})


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_webhookish | _json)
def test_no_payload_makes_the_parser_crash(data):
    try:
        items = parse(json.dumps(data).encode())
    except ProblemError as exc:
        assert exc.status in (400, 422)
        return
    for item in items:
        assert 0 < len(item.event_id) <= 255
        if isinstance(item, InboundMessage):
            assert isinstance(item.text, str) and 0 < len(item.sender.external_id) <= 200


# --- Files from customers -------------------------------------------------------------------------------


async def test_a_customers_photo_is_downloaded_with_the_token_and_stored_as_an_attachment(client, admin, fake,
                                                                                         channel):
    photo = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    fake.add_media("884230125619", photo, "image/jpeg")
    payload = fake.message_payload({"id": "wamid.photo", "type": "image", "image": {
        "caption": "Вот так пришла коробка", "mime_type": "image/jpeg", "sha256": "x", "id": "884230125619"}})
    r = await fake.deliver(client, hook(channel), payload)
    assert r.status_code == 200, r.text
    (conv,) = await conversations(client, admin)
    (msg,) = conv["messages"]
    assert msg["text"] == "Вот так пришла коробка"
    (att,) = msg["attachments"]
    assert (att["filename"], att["content_type"], att["size"]) == ("image-884230125619.jpg", "image/jpeg", len(photo))
    assert (await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)).content == photo
    lookup, download = fake.calls
    assert lookup.path == "/v21.0/884230125619" and lookup.query == {"phone_number_id": PHONE_NUMBER_ID}
    assert download.path == "/lookaside/whatsapp_business/attachments/" and download.query["mid"] == "884230125619"
    assert lookup.headers["authorization"] == download.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_a_failed_download_makes_meta_retry_and_the_retry_stores_the_file(client, admin, runtime, fake,
                                                                               channel):
    payload = for_our_number(CASES["message/document"])
    fake.media_answers.append(Answer.server_error())
    r = await fake.deliver(client, hook(channel), payload)
    assert r.status_code == 503 and r.json()["code"] == "file_download_failed", r.text
    assert await conversations(client, admin) == []
    r = await fake.deliver(client, hook(channel), payload)
    assert r.status_code == 200 and r.json()["duplicates"] == 0
    (conv,) = await conversations(client, admin)
    assert [a["filename"] for a in conv["messages"][0]["attachments"]] == ["filename.pdf"]


async def test_media_whatsapp_no_longer_has_arrives_as_a_message_with_the_reason(client, admin, fake, channel):
    payload = fake.message_payload({"id": "wamid.old", "type": "document", "document": {
        "filename": "счёт.pdf", "mime_type": "application/pdf", "id": "404404404"}})
    r = await fake.deliver(client, hook(channel), payload)
    assert r.status_code == 200, r.text
    (conv,) = await conversations(client, admin)
    (msg,) = conv["messages"]
    assert msg["attachments"] == []
    (refused,) = msg["payload"]["files_refused"]
    assert refused["filename"] == "счёт.pdf"
    assert "404404404" in refused["reason"] and "does not exist" in refused["reason"]


# --- Replies --------------------------------------------------------------------------------------------


async def test_a_reply_goes_out_as_text_and_carries_the_wamid(client, admin, runtime, fake, channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Заказ уже в пути: https://track.example/123")
    assert await worker.run_due() == 1
    (call,) = fake.sends()
    assert call.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert call.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert call.body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER,
                         "type": "text", "text": {"body": "Заказ уже в пути: https://track.example/123",
                                                  "preview_url": True}}
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", fake.sent[0]["id"])


async def test_statuses_out_of_order_and_repeated_end_at_the_furthest(client, admin, runtime, fake, channel, worker,
                                                                     clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Проверьте, пожалуйста")
    await worker.run_due()
    wamid = fake.sent[0]["id"]
    for status in ("read", "delivered", "sent", "sent", "read"):
        r = await fake.deliver(client, hook(channel), fake.status_payload(wamid, status))
        assert r.status_code == 200, r.text
    failed = fake.status_payload(wamid, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    assert (await fake.deliver(client, hook(channel), failed)).status_code == 200
    msg = await shown(client, admin, conv, sent["id"])
    assert (msg["status"], msg["status_reason"]) == ("read", ""), "a failure after read is ignored"


async def test_a_failure_report_fails_the_message_with_whatsapps_reason(client, admin, fake, channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Hello")
    await worker.run_due()
    wamid = fake.sent[0]["id"]
    errors = [{"code": 131049, "title": "Message not delivered to maintain healthy ecosystem engagement.",
               "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message "
                                         "failed to be delivered."}}]
    await fake.deliver(client, hook(channel), fake.status_payload(wamid, "failed", errors=errors))
    await fake.deliver(client, hook(channel), fake.status_payload(wamid, "delivered"))
    msg = await shown(client, admin, conv, sent["id"])
    assert msg["status"] == "failed", "failed is final: a late 'delivered' does not revive it"
    assert msg["status_reason"].startswith("WhatsApp could not deliver the message: Message not delivered")
    assert msg["status_reason"].endswith("(error 131049)")


async def test_a_status_that_beats_the_send_answer_is_applied_once_the_send_is_recorded(
        client, admin, runtime, fake, channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Быстрый ответ")
    seen: dict[str, Any] = {}

    async def report_early(message: dict[str, Any]) -> None:
        # Meta's webhook reaches us before its answer to the send reaches the outbox.
        for status in ("sent", "delivered", "delivered"):
            r = await fake.deliver(client, hook(channel), fake.status_payload(message["id"], status))
            assert r.status_code == 200, r.text
        async with runtime.db.read() as s:
            seen["events"] = sorted((await s.execute(select(InboundEvent.status).where(
                InboundEvent.ref == message["id"]))).scalars().all())
        seen["status"] = (await stored(runtime, sent["id"])).status

    fake.on_send = report_early
    await worker.run_due()
    assert seen == {"events": ["unmatched", "unmatched"], "status": "queued"}
    msg = await shown(client, admin, conv, sent["id"])
    assert msg["status"] == "delivered"
    async with runtime.db.read() as s:
        statuses = (await s.execute(select(InboundEvent.status).where(
            InboundEvent.provider_event_id.like("status:%")))).scalars().all()
    assert statuses == ["processed", "processed"], "the waiting reports were applied and marked"


async def test_reply_buttons_go_out_and_a_press_comes_back_with_the_button_id(client, admin, runtime, fake, channel,
                                                                             worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Что вы хотите сделать?")
    await set_buttons(runtime, sent["id"], [{"id": "track", "label": "Отследить заказ"},
                                            {"id": "cancel", "label": "Отменить заказ и вернуть деньги"},
                                            {"id": "human", "label": "Позвать оператора"}])
    await worker.run_due()
    (out,) = fake.sent
    assert out["type"] == "interactive"
    assert out["interactive"]["body"] == {"text": "Что вы хотите сделать?"}
    assert [b["reply"] for b in out["interactive"]["action"]["buttons"]] == [
        {"id": "track", "title": "Отследить заказ"}, {"id": "cancel", "title": "Отменить заказ и…"},
        {"id": "human", "title": "Позвать оператора"}]
    press = fake.message_payload({"id": "wamid.press", "type": "interactive", "context": {"id": out["id"]},
                                  "interactive": {"type": "button_reply",
                                                  "button_reply": {"id": "cancel", "title": "Отменить заказ и…"}}})
    for _ in range(2):
        assert (await fake.deliver(client, hook(channel), press)).status_code == 200
    detail = (await client.get(f"/api/v1/conversations/{conv}", headers=admin.headers)).json()
    pressed = [m for m in detail["messages"] if m["direction"] == "in" and m["payload"].get("button")]
    assert [(m["text"], m["payload"]["button"], m["payload"]["reply_to"]) for m in pressed] == [
        ("Отменить заказ и…", "cancel", out["id"])]


def outbound(text: str, *, buttons: tuple[Button, ...] = (), language: str | None = None,
             last: dt.datetime | None = None, attachments: tuple[Any, ...] = ()) -> OutboundMessage:
    at = now()
    return OutboundMessage(id=7, idempotency_key=f"msg_7_{len(text)}_{len(buttons)}", conversation_id=3, to=CUSTOMER,
                           text=text, kind="text", created_at=at, buttons=buttons, language=language,
                           last_customer_message_at=last or at - dt.timedelta(minutes=5), attachments=attachments)


async def send(fake: FakeWhatsApp, message: OutboundMessage, **settings: Any) -> str | None:
    async with httpx.AsyncClient() as http:
        result = await get_adapter("whatsapp").send(config(api_base_url=fake.base_url, **settings), message, http)
    return result.provider_message_id


async def test_four_to_ten_choices_become_a_list_with_short_row_titles(fake):
    labels = ["Доставка", "Оплата", "Возврат товара ненадлежащего качества", "Гарантия", "Другое"]
    buttons = tuple(Button(f"t{i}", label) for i, label in enumerate(labels))
    wamid = await send(fake, outbound("Выберите тему", buttons=buttons, language="ru"))
    (out,) = fake.sent
    assert wamid == out["id"]
    action = out["interactive"]["action"]
    assert out["interactive"]["type"] == "list" and action["button"] == "Выбрать"
    (section,) = action["sections"]
    assert section["rows"][2] == {"id": "t2", "title": "Возврат товара…",
                                  "description": "Возврат товара ненадлежащего качества"}
    assert [r["title"] for r in section["rows"]] == ["Доставка", "Оплата", "Возврат товара…", "Гарантия", "Другое"]


async def test_more_than_ten_choices_become_numbered_lines(fake):
    buttons = tuple(Button(f"b{i}", f"Вариант {i}") for i in range(1, 13))
    await send(fake, outbound("Выберите", buttons=buttons))
    (out,) = fake.sent
    assert out["type"] == "text" and out["text"]["body"].splitlines() == ["Выберите", *(f"{i}. Вариант {i}"
                                                                                      for i in range(1, 13))]


async def test_a_long_text_with_buttons_goes_first_then_the_choice_with_a_short_body(fake):
    text = "Условия возврата. " * 80  # 1440 characters: over the interactive body limit of 1024
    wamid = await send(fake, outbound(text, buttons=(Button("yes", "Да"), Button("no", "Нет")), language="ru"))
    first, second = fake.sent
    assert first["type"] == "text" and first["text"]["body"] == text.strip()
    assert second["interactive"]["body"] == {"text": "Выберите вариант:"}
    assert wamid == second["id"], "statuses are followed on the last part"


async def test_duplicate_titles_after_shortening_are_made_unique(fake):
    buttons = (Button("a", "Подтвердить заказ номер 1"), Button("b", "Подтвердить заказ номер 2"))
    await send(fake, outbound("?", buttons=buttons))
    titles = [b["reply"]["title"] for b in fake.sent[0]["interactive"]["action"]["buttons"]]
    assert len(set(titles)) == 2 and all(len(t) <= 20 for t in titles), titles


async def test_a_long_text_is_split_at_4096_without_breaking_words(fake):
    words = [f"слово{i}" for i in range(1500)]  # about 15 000 characters
    wamid = await send(fake, outbound(" ".join(words)))
    bodies = [m["text"]["body"] for m in fake.sent]
    assert len(bodies) == 4 and all(4000 < len(b) <= 4096 for b in bodies[:-1])
    assert " ".join(bodies).split() == words, "no word is cut and none is lost"
    assert wamid == fake.sent[-1]["id"]


@hsettings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400),
       limit=st.integers(min_value=8, max_value=120))
def test_split_text_keeps_every_character_within_the_limit(text, limit):
    chunks = split_text(text, limit)
    assert all(0 < utf16_len(c) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())


# --- Files on agents' replies --------------------------------------------------------------------------


class ProcessDied(BaseException):
    """The worker's process stops mid-send (not an Exception: nothing in the process handles it)."""


async def reply_with_file(client, admin, conversation: int, filename: str, data: bytes, content_type: str,  # type: ignore[no-untyped-def]
                          text: str = "") -> dict[str, Any]:
    r = await client.post(f"/api/v1/conversations/{conversation}/attachments", headers=admin.headers,
                          files={"file": (filename, data, content_type)}, data={"text": text} if text else {})
    assert r.status_code == 201, r.text
    return dict(r.json())


def attachment(tmp_path: Path, filename: str, data: bytes, content_type: str, n: int = 1) -> OutboundAttachment:
    path = tmp_path / f"stored-{n}"
    path.write_bytes(data)
    return OutboundAttachment(id=n, filename=filename, content_type=content_type, size=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), url=f"http://testserver/api/v1/attachments/{n}",
                              path=path)


async def test_an_agents_file_reaches_the_customer_with_the_text_as_its_caption(client, admin, runtime, fake, channel,
                                                                               worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    sent = await reply_with_file(client, admin, conv, "Счёт 42.pdf", pdf, "application/pdf", "Счёт во вложении")
    assert await worker.run_due() == 1
    (upload,) = fake.upload_calls()
    assert upload.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert upload.path == f"/v21.0/{PHONE_NUMBER_ID}/media"
    assert (upload.body["messaging_product"], upload.body["type"]) == ("whatsapp", "application/pdf")
    assert upload.body["file"]["data"] == pdf and upload.body["file"]["content_type"] == "application/pdf"
    (stored_file,) = fake.uploads
    (out,) = fake.sent
    assert out["type"] == "document" and out["to"] == CUSTOMER
    assert out["document"] == {"id": stored_file.media_id, "caption": "Счёт во вложении", "filename": "Счёт 42.pdf"}
    assert fake.file_of(out) == (pdf, "application/pdf"), "the customer gets the exact bytes the agent attached"
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", out["id"])


@pytest.mark.parametrize("filename,content_type,kind", [
    ("photo.jpg", "image/jpeg", "image"), ("scan.png", "image/png", "image"), ("clip.mp4", "video/mp4", "video"),
    ("voice.ogg", "audio/ogg", "audio"), ("sticker.webp", "image/webp", "document"),
    ("notes.txt", "text/plain", "document"),
])
async def test_each_file_goes_as_the_message_type_its_content_type_calls_for(client, admin, fake, channel, worker,
                                                                             clock, filename, content_type, kind):
    conv = await open_chat(client, admin, fake, channel)
    data = f"bytes of {filename}".encode() * 100
    await reply_with_file(client, admin, conv, filename, data, content_type, "Вот файл")
    await worker.run_due()
    *texts, out = fake.sent
    assert out["type"] == kind and fake.file_of(out) == (data, content_type)
    if kind == "audio":
        # Audio messages carry no caption: the text goes first, on its own.
        assert [t["text"]["body"] for t in texts] == ["Вот файл"] and "caption" not in out["audio"]
    else:
        assert texts == [] and out[kind]["caption"] == "Вот файл"
    assert ("filename" in out[kind]) == (kind == "document")


async def test_a_file_alone_goes_without_a_caption_and_a_long_text_goes_first(client, admin, fake, channel, worker,
                                                                             clock):
    conv = await open_chat(client, admin, fake, channel)
    await reply_with_file(client, admin, conv, "photo.jpg", b"\xff\xd8\xff\xe0 jpeg", "image/jpeg")
    await worker.run_due()
    (alone,) = fake.sent
    assert alone["image"] == {"id": fake.uploads[0].media_id}
    text = "Условия возврата. " * 70  # 1260 characters: longer than a caption
    await reply_with_file(client, admin, conv, "terms.pdf", b"%PDF-1.4 terms", "application/pdf", text)
    await worker.run_due()
    first, second = fake.sent[1:]
    assert first["text"]["body"] == text.strip()
    assert second["document"] == {"id": fake.uploads[1].media_id, "filename": "terms.pdf"}


async def test_a_file_over_whatsapps_limit_fails_with_the_limit_and_is_never_uploaded(client, admin, runtime, fake,
                                                                                     channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    big = await reply_with_file(client, admin, conv, "big.jpg", b"\xff" * (5 * 1024 * 1024 + 1), "image/jpeg",
                                "Фото")
    await worker.run_due()
    msg = await stored(runtime, big["id"])
    assert msg.status == "failed"
    assert msg.status_reason == ("WhatsApp sends images (JPEG, PNG) of at most 5 MB; 'big.jpg' is 5.1 MB — send a "
                                 "smaller file or a link")
    assert fake.calls == [], "neither uploaded nor sent"
    assert (await outbox_item(runtime, big["id"])).attempts == 1, "not retried: the file stays too large"


async def test_a_type_whatsapp_does_not_take_fails_before_any_part_goes_out(client, admin, runtime, fake, channel,
                                                                           worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply_with_file(client, admin, conv, "archive.zip", b"PK\x03\x04 zip", "application/zip", "Архив")
    await worker.run_due()
    msg = await stored(runtime, sent["id"])
    assert msg.status == "failed" and msg.status_reason.startswith(
        "WhatsApp does not take files of type application/zip ('archive.zip'); it accepts JPEG or PNG images")
    assert fake.sent == [] and fake.upload_calls() == [], "the caption did not go out without its file"


async def test_a_document_over_100_mb_on_disk_is_refused_without_reading_it(fake, tmp_path, monkeypatch):
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as fh:
        fh.truncate(100 * 1024 * 1024 + 1)  # sparse: costs no disk
    file = OutboundAttachment(id=9, filename="huge.pdf", content_type="application/pdf", size=huge.stat().st_size,
                              sha256="0" * 64, url="http://testserver/api/v1/attachments/9", path=huge)

    def no_reading(self: Path) -> bytes:
        raise AssertionError(f"{self} was read although it is over WhatsApp's limit")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(SendError) as err:
        await send(fake, outbound("", attachments=(file,)))
    assert not err.value.retryable
    assert err.value.reason == ("WhatsApp sends documents of at most 100 MB; 'huge.pdf' is 100.1 MB — send a smaller "
                                "file or a link")
    assert fake.calls == []


async def test_an_upload_refused_for_a_while_is_retried(client, admin, runtime, fake, channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    data = b"\x89PNG\r\n\x1a\n a png"
    sent = await reply_with_file(client, admin, conv, "chart.png", data, "image/png", "График")
    fake.answer_upload(Answer.server_error(), Answer(502))
    await worker.run_due()
    item = await outbox_item(runtime, sent["id"])
    assert item.status == "pending" and "131000" in item.last_error, item.last_error
    assert fake.sent == []
    clock.tick(60)
    await worker.run_due()
    assert "HTTP 502" in (await outbox_item(runtime, sent["id"])).last_error
    clock.tick(600)
    await worker.run_due()
    (out,) = fake.sent
    assert fake.file_of(out) == (data, "image/png") and out["image"]["caption"] == "График"
    assert len(fake.upload_calls()) == 3 and len(fake.uploads) == 1
    assert (await stored(runtime, sent["id"])).status == "sent"


async def test_upload_errors_map_like_other_graph_errors(fake, tmp_path):
    file = attachment(tmp_path, "a.pdf", b"%PDF-1.4", "application/pdf")
    fake.answer_upload(Answer.too_many_requests(retry_after=40))
    with pytest.raises(SendError) as err:
        await send(fake, outbound("x", attachments=(file,)))
    assert err.value.retryable and err.value.retry_after == 40
    assert err.value.reason.startswith("WhatsApp rate limit reached, the file 'a.pdf' will be sent later")
    fake.answer_upload(Answer.graph_error(131053, "(#131053) Media upload error", "Unsupported file"))
    with pytest.raises(SendError) as err:
        await send(fake, outbound("x", attachments=(file,)))
    assert not err.value.retryable
    assert err.value.reason == "WhatsApp refused the file 'a.pdf': Unsupported file (error 131053)"


async def test_a_retry_after_a_failure_mid_message_neither_resends_parts_nor_uploads_again(fake, tmp_path):
    first = attachment(tmp_path, "a.pdf", b"%PDF-1.4 first", "application/pdf", 1)
    second = attachment(tmp_path, "b.jpg", b"\xff\xd8 second", "image/jpeg", 2)
    message = outbound("Подробности. " * 100, attachments=(first, second))  # too long for a caption
    fake.answer(None, None, Answer.too_many_requests(retry_after=30))  # text, first file, then the second is refused
    with pytest.raises(SendError) as err:
        await send(fake, message)
    assert err.value.retryable
    assert [m["type"] for m in fake.sent] == ["text", "document"] and len(fake.uploads) == 2
    wamid = await send(fake, message)
    assert [m["type"] for m in fake.sent] == ["text", "document", "image"], "no part went twice"
    assert len(fake.upload_calls()) == 2, "the file uploaded before the refusal is not uploaded again"
    assert fake.file_of(fake.sent[1]) == (b"%PDF-1.4 first", "application/pdf")
    assert fake.file_of(fake.sent[2]) == (b"\xff\xd8 second", "image/jpeg")
    assert wamid == fake.sent[-1]["id"]


async def test_a_crash_between_the_upload_and_the_send_does_not_lose_the_file(client, admin, runtime, fake, channel,
                                                                             worker, clock, monkeypatch):
    conv = await open_chat(client, admin, fake, channel)
    pdf = b"%PDF-1.7 contract " * 500
    sent = await reply_with_file(client, admin, conv, "contract.pdf", pdf, "application/pdf", "Договор")
    real = graph.post_message

    async def dies(*args: Any, **kw: Any) -> str | None:
        raise ProcessDied()

    monkeypatch.setattr(graph, "post_message", dies)
    with pytest.raises(ProcessDied):
        await worker.run_due()
    assert len(fake.uploads) == 1 and fake.sent == []
    monkeypatch.setattr(graph, "post_message", real)
    get_adapter("whatsapp")._progress.clear()  # type: ignore[attr-defined]  # a new process remembers nothing
    clock.tick(worker.lease.total_seconds() + 1)
    successor = OutboxWorker(runtime, name="wa-successor")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    (out,) = fake.sent
    assert len(fake.uploads) == 2, "uploaded again from our disk"
    assert out["document"]["id"] == fake.uploads[1].media_id and fake.file_of(out) == (pdf, "application/pdf")
    assert out["document"]["caption"] == "Договор"
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", out["id"])


async def test_files_cannot_go_outside_the_24_hour_window(client, admin, runtime, fake, worker, clock):
    channel = await create_channel(client, admin, fake, template_name="support_reply")
    fake.templates[("support_reply", "en_US")] = 0
    conv = await open_chat(client, admin, fake, channel)
    clock.tick(25 * 3600)
    sent = await reply_with_file(client, admin, conv, "a.pdf", b"%PDF-1.4", "application/pdf", "Счёт")
    await worker.run_due()
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.status_reason) == ("failed", WINDOW_CLOSED_FILES)
    assert fake.calls == [], "neither the template nor the file went out"


async def test_when_whatsapp_says_the_window_closed_a_file_fails_with_the_reason(fake, tmp_path):
    fake.last_customer_message[CUSTOMER] = now() - dt.timedelta(hours=30)
    file = attachment(tmp_path, "a.jpg", b"\xff\xd8 jpeg", "image/jpeg")
    with pytest.raises(SendError) as err:
        await send(fake, outbound("Фото", attachments=(file,)), template_name="any_template")
    assert (err.value.retryable, err.value.reason) == (False, WINDOW_CLOSED_FILES)
    assert [c.body.get("type") for c in fake.sends()] == ["image"], "no template went instead of the file"


async def test_buttons_with_a_file_come_after_it(fake, tmp_path):
    file = attachment(tmp_path, "menu.pdf", b"%PDF-1.4 menu", "application/pdf")
    await send(fake, outbound("Что выберете?", buttons=(Button("a", "Пиццу"), Button("b", "Суп")),
                              attachments=(file,)))
    assert [m["type"] for m in fake.sent] == ["document", "interactive"]
    assert "caption" not in fake.sent[0]["document"]
    assert fake.sent[1]["interactive"]["body"] == {"text": "Что выберете?"}


# --- The 24-hour window ---------------------------------------------------------------------------------


async def test_outside_the_window_without_a_template_the_reply_fails_with_the_reason(client, admin, runtime, fake,
                                                                                    channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    clock.tick(25 * 3600)
    sent = await reply(client, admin, conv, "Извините за долгий ответ")
    await worker.run_due()
    assert fake.sends() == []
    msg = await shown(client, admin, conv, sent["id"])
    assert (msg["status"], msg["status_reason"]) == ("failed", WINDOW_CLOSED)
    assert (await outbox_item(runtime, sent["id"])).attempts == 1, "not retried: waiting cannot reopen the window"


async def test_outside_the_window_the_configured_template_carries_the_reply(client, admin, runtime, fake, worker,
                                                                           clock):
    channel = await create_channel(client, admin, fake, template_name="support_reply", template_language="ru",
                                   template_text_parameter=True)
    fake.templates[("support_reply", "ru")] = 1
    conv = await open_chat(client, admin, fake, channel)
    clock.tick(24 * 3600 + 1)
    sent = await reply(client, admin, conv, "Извините за долгий ответ.\n\nЗаказ доставят завтра.")
    await worker.run_due()
    (out,) = fake.sent
    assert out["type"] == "template" and out["template"] == {
        "name": "support_reply", "language": {"code": "ru"},
        "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "Извините за долгий ответ. Заказ доставят завтра."}]}]}
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", out["id"])


async def test_when_whatsapp_says_the_window_closed_the_template_is_sent_or_the_reply_fails(
        client, admin, runtime, fake, worker, clock):
    channel = await create_channel(client, admin, fake)
    conv = await open_chat(client, admin, fake, channel)
    # WhatsApp counts from when the customer wrote; their message reached us a day late.
    fake.last_customer_message[CUSTOMER] = now() - dt.timedelta(hours=30)
    first = await reply(client, admin, conv, "Ответ")
    await worker.run_due()
    msg = await stored(runtime, first["id"])
    assert (msg.status, msg.status_reason) == ("failed", WINDOW_CLOSED)
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers, json={"settings": {
        **channel["settings"], "template_name": "we_replied"}})
    assert r.status_code == 200, r.text
    fake.templates[("we_replied", "en_US")] = 0
    second = await reply(client, admin, conv, "Ответ ещё раз")
    await worker.run_due()
    assert [m["type"] for m in fake.sent] == ["template"]
    assert fake.sent[0]["template"] == {"name": "we_replied", "language": {"code": "en_US"}}
    assert (await stored(runtime, second["id"])).status == "sent"


async def test_a_template_whatsapp_does_not_know_fails_with_a_pointer_to_the_settings(fake):
    with pytest.raises(SendError) as err:
        await send(fake, outbound("hi", last=now() - dt.timedelta(days=3)), template_name="missing_one")
    assert not err.value.retryable
    assert "template 'missing_one'" in err.value.reason and "132001" in err.value.reason
    assert "template_name and template_language" in err.value.reason


# --- Provider errors ------------------------------------------------------------------------------------


async def test_a_rate_limit_mid_message_is_retried_when_whatsapp_says_without_repeating_parts(
        client, admin, runtime, fake, channel, worker, clock):
    conv = await open_chat(client, admin, fake, channel)
    text = "\n\n".join(f"Пункт {i}: " + " ".join(["подробности"] * 30) for i in range(30))  # 11 000 characters
    sent = await reply(client, admin, conv, text)
    fake.answer(None, Answer.too_many_requests(retry_after=90))
    await worker.run_due()
    item = await outbox_item(runtime, sent["id"])
    assert item.status == "pending" and "rate limit" in item.last_error
    assert item.next_attempt_at == clock.t + dt.timedelta(seconds=90), "WhatsApp's Retry-After is honoured"
    clock.tick(89)
    assert await worker.run_due() == 0
    clock.tick(2)
    assert await worker.run_due() == 1
    bodies = [m["text"]["body"] for m in fake.sent]
    assert len(bodies) == 3 and len(set(bodies)) == 3, "the part accepted before the limit is not sent again"
    assert "\n\n".join(bodies) == text.strip()
    msg = await stored(runtime, sent["id"])
    assert (msg.status, msg.provider_message_id) == ("sent", fake.sent[-1]["id"])


@pytest.mark.parametrize("answer,fragment", [
    (Answer.throughput_limit(), "130429"), (Answer.server_error(), "131000"),
    (Answer(503), "HTTP 503"), (Answer(429, 131056, "(#131056) pair rate limit hit"), "131056"),
])
async def test_throttling_and_server_errors_are_retried(client, admin, runtime, fake, channel, worker, clock, answer,
                                                       fragment):
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Повтор")
    fake.answer(answer)
    await worker.run_due()
    item = await outbox_item(runtime, sent["id"])
    assert item.status == "pending" and fragment in item.last_error, item.last_error
    clock.tick(60)
    await worker.run_due()
    assert (await stored(runtime, sent["id"])).status == "sent"


async def test_graphs_estimate_of_regained_access_sets_the_retry(fake):
    usage = json.dumps({"102290129340398": [{"type": "whatsapp", "call_count": 100,
                                             "estimated_time_to_regain_access": 7}]})
    fake.answer(Answer(400, 80007, "(#80007) Rate limit issues", headers={"X-Business-Use-Case-Usage": usage}))
    with pytest.raises(SendError) as err:
        await send(fake, outbound("hi"))
    assert err.value.retryable and err.value.retry_after == 7 * 60


async def test_an_invalid_token_fails_the_reply_with_a_sentence_for_the_admin(client, admin, runtime, fake, worker,
                                                                             clock):
    fake.access_token = "EAAG" + "rotated" * 10  # the token was revoked or rotated at Meta
    channel = await create_channel(client, admin, fake)
    conv = await open_chat(client, admin, fake, channel)
    sent = await reply(client, admin, conv, "Hello")
    await worker.run_due()
    msg = await shown(client, admin, conv, sent["id"])
    assert msg["status"] == "failed" and "the access token is invalid or expired" in msg["status_reason"]
    assert "(error 190)" in msg["status_reason"]
    assert (await outbox_item(runtime, sent["id"])).attempts == 1


async def test_a_refused_interactive_message_fails_with_whatsapps_details(fake):
    fake.answer(Answer.graph_error(131009, "(#131009) Parameter value is not valid",
                                   "Button title length invalid. Min length: 1, Max length: 20"))
    with pytest.raises(SendError) as err:
        await send(fake, outbound("?", buttons=(Button("a", "A"),)))
    assert not err.value.retryable
    assert err.value.reason == ("WhatsApp refused the message: Button title length invalid. Min length: 1, "
                                "Max length: 20 (error 131009)")


async def test_an_unreachable_api_is_retried(fake):
    await fake.stop()
    try:
        with pytest.raises(SendError) as err:
            await send(fake, outbound("hi"))
        assert err.value.retryable and "Cannot reach WhatsApp" in err.value.reason
    finally:
        await fake.start()
