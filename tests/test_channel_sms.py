"""SMS through a Twilio-compatible gateway end to end: a fake Twilio on 127.0.0.1 signs incoming SMS and
delivery reports into the real webhook, and receives agent replies from the outbox.

Every inbound request is posted twice (Twilio retries on timeouts); delivery reports only move a
message forward; rate limits wait for Retry-After on the test clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import func, select

from kommutator.channels.types.sms.signature import matches, signature
from kommutator.conversations.models import Message
from kommutator.ingest.models import InboundEvent
from kommutator.workers.outbox import OutboxWorker

from .fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, Answer, FakeTwilio, twilio_signature

CUSTOMER = "+14155550123"


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


def sms_settings(twilio: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {"api_base_url": twilio.url, "account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER, **extra}


@pytest.fixture
async def channel(client, admin, twilio) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "sms", "name": "SMS", "settings": sms_settings(twilio), "credentials": {"auth_token": AUTH_TOKEN}})
    assert r.status_code == 201, r.text
    created = dict(r.json())
    # As the set-up text asks: the webhook URL goes into the settings so that delivery reports come back.
    r = await client.patch(f"/api/v1/channels/{created['id']}", headers=admin.headers,
                           json={"settings": sms_settings(twilio, webhook_url=created["webhook_url"])})
    assert r.status_code == 200, r.text
    return created


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="sms-worker")
    yield w
    await w.stop()


def hook(channel: dict[str, Any]) -> str:
    return f"http://testserver/webhooks/{channel['id']}"


async def texts_in(client, twilio, channel, body: str, **kw: Any) -> httpx.Response:  # type: ignore[no-untyped-def]
    params = twilio.inbound_params(sender=CUSTOMER, to=FROM_NUMBER, body=body, **kw)
    return await twilio.post_signed(client, hook(channel), params)


async def only_conversation(client, admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    listed = (await client.get("/api/v1/conversations", headers=admin.headers)).json()["items"]
    assert len(listed) == 1, listed
    return dict((await client.get(f"/api/v1/conversations/{listed[0]['id']}", headers=admin.headers)).json())


async def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def open_chat(client, admin, twilio, channel) -> int:  # type: ignore[no-untyped-def]
    r = await texts_in(client, twilio, channel, "Hi, where is my parcel?")
    assert r.status_code == 200, r.text
    return int((await only_conversation(client, admin))["id"])


async def reply(client, admin, conv_id: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": text}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def shown_message(client, admin, conv_id: int, message_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    conv = (await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)).json()
    return next(m for m in conv["messages"] if m["id"] == message_id)


# --- The signature ----------------------------------------------------------------------------------------


def test_the_signer_gives_twilios_documented_test_vector():
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert matches("12345", [url], params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert matches("12345", ["https://mycompany.com:443/myapp.php?foo=1&bar=2"], params,
                   "0/KCTR6DLpKmkAf8muzZqo1nDgQ="), "the default port may or may not be part of the signed URL"
    assert not matches("12345", [url], [*params[:-1], ("To", "+18005551213")], "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not matches("54321", [url], params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


async def test_a_bad_missing_or_misplaced_signature_is_refused_and_nothing_stored(client, runtime, twilio, channel):
    params = twilio.inbound_params(sender=CUSTOMER, to=FROM_NUMBER, body="hi")
    bad = await twilio.post_signed(client, hook(channel), params, token="0" * 32)
    assert bad.status_code == 403 and bad.json()["code"] == "invalid_twilio_signature"
    elsewhere = await twilio.post_signed(client, hook(channel), params, signed_url="https://evil.example/hook")
    assert elsewhere.status_code == 403
    unsigned = await client.post(hook(channel), content=urlencode(params),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 403
    # Every parameter is signed: one added after signing breaks the signature.
    sig = twilio_signature(AUTH_TOKEN, hook(channel), params)
    tampered = await client.post(hook(channel), content=urlencode({**params, "Body": "send money"}),
                                 headers={"content-type": "application/x-www-form-urlencoded",
                                          "x-twilio-signature": sig})
    assert tampered.status_code == 403
    other_account = await twilio.post_signed(client, hook(channel), {**params, "AccountSid": "AC" + "f" * 32})
    assert other_account.status_code == 403 and other_account.json()["code"] == "wrong_twilio_account"
    assert await count(runtime, InboundEvent) == 0


async def test_behind_a_proxy_the_signature_is_over_the_public_url(client, admin, twilio, channel):
    public = f"https://sms.example.com/webhooks/{channel['id']}"
    params = twilio.inbound_params(sender=CUSTOMER, to=FROM_NUMBER, body="via proxy")
    refused = await twilio.post_signed(client, hook(channel), params, signed_url=public)
    assert refused.status_code == 403
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"settings": sms_settings(twilio, webhook_url=public)})
    assert r.status_code == 200
    accepted = await twilio.post_signed(client, hook(channel) + "?status=1", params, signed_url=public + "?status=1")
    assert accepted.status_code == 200, accepted.text
    assert (await only_conversation(client, admin))["messages"][0]["text"] == "via proxy"


# --- Inbound --------------------------------------------------------------------------------------------


async def test_an_sms_opens_a_conversation_and_its_redelivery_is_a_no_op(client, admin, runtime, twilio, channel):
    params = twilio.inbound_params(sender=CUSTOMER, to=FROM_NUMBER, body="Привет! Where is order 42?")
    first = await twilio.post_signed(client, hook(channel), params)
    again = await twilio.post_signed(client, hook(channel), params)
    for r in (first, again):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/xml") and r.text.endswith("<Response/>")
    conv = await only_conversation(client, admin)
    assert [m["text"] for m in conv["messages"]] == ["Привет! Where is order 42?"]
    assert conv["contact"]["phone"] == CUSTOMER
    assert conv["contact"]["identities"][0]["external_id"] == CUSTOMER
    assert await count(runtime, InboundEvent) == 1 and await count(runtime, Message) == 1


async def test_mms_media_are_downloaded_with_basic_auth_to_the_api_host_only(client, admin, twilio, channel):
    jpeg = twilio.add_media(b"\xff\xd8\xff photo of the parcel", "image/jpeg")
    media = ((jpeg, "image/jpeg"),)
    for _ in range(2):
        r = await texts_in(client, twilio, channel, "", media=media, sid="MM" + "1" * 32)
        assert r.status_code == 200, r.text
    (msg,) = (await only_conversation(client, admin))["messages"]
    (attachment,) = msg["attachments"]
    assert attachment["content_type"] == "image/jpeg" and attachment["filename"].endswith(".jpg")
    got = await client.get(f"/api/v1/attachments/{attachment['id']}", headers=admin.headers)
    assert got.content == b"\xff\xd8\xff photo of the parcel"
    api, storage = twilio.media_requests[:2]
    assert api[1] is True and api[0].startswith("/2010-04-01/")
    assert storage == (storage[0], False), "credentials never follow the redirect to storage"


@pytest.mark.parametrize(("body", "status"), [(b"MessageSid=SM1&Body=no+sender", 422), (b"%ff%fe=1", 400),
                                             (b"From=%2B1555&Body=no+sid", 422)])
async def test_incomplete_or_broken_forms_are_client_errors(client, channel, body, status):
    signed = dict(parse_qsl(body.decode(), errors="replace"))
    r = await client.post(hook(channel), content=body, headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(AUTH_TOKEN, hook(channel), signed)})
    assert r.status_code == status, r.text


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
                                               "MediaContentType0", "MessageStatus", "ErrorCode", "AccountSid"])
                              | st.text(max_size=10),
                              st.text(max_size=30) | st.sampled_from(["delivered", "undelivered", "received",
                                                                     "http://127.0.0.1:9/x", "3", ACCOUNT_SID]),
                              max_size=8),
       raw=st.binary(max_size=60), use_raw=st.booleans())
async def test_arbitrary_signed_forms_never_give_a_server_error(client, channel, params, raw, use_raw):
    body = raw if use_raw else urlencode(params).encode()
    sig = twilio_signature(AUTH_TOKEN, hook(channel), {} if use_raw else params)
    r = await client.post(hook(channel), content=body, headers={
        "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig})
    assert r.status_code < 500 or r.status_code == 503, r.text


# --- Outbound and delivery reports ----------------------------------------------------------------------


async def test_a_reply_is_sent_with_basic_auth_and_reports_move_it_forward_only(client, admin, runtime, twilio,
                                                                               channel, worker):
    conv = await open_chat(client, admin, twilio, channel)
    sent = await reply(client, admin, conv, "It arrives tomorrow.")
    assert await worker.run_due() == 1
    (call,) = twilio.calls
    assert call.authorized and call.status == 201
    assert call.form == {"To": CUSTOMER, "From": FROM_NUMBER, "Body": "It arrives tomorrow.",
                         "StatusCallback": f"{hook(channel)}?status=1"}
    (message,) = twilio.messages
    async with runtime.db.read() as s:
        assert await s.scalar(select(Message.provider_message_id).where(Message.id == sent["id"])) == message.sid
    for status in ("sent", "delivered", "delivered", "sent", "undelivered"):
        r = await twilio.report(client, message, status, error_code="30003" if status == "undelivered" else None)
        assert r.status_code == 200 and r.text.endswith("<Response/>")
    shown = await shown_message(client, admin, conv, sent["id"])
    assert (shown["status"], shown["status_reason"]) == ("delivered", ""), "late and repeated reports change nothing"


@pytest.mark.parametrize(("code", "words"), [
    ("30003", "unreachable"), ("30005", "unknown to its carrier"), ("30006", "landline"),
    ("30007", "filtered"), ("30999", "twilio.com/docs/errors/30999"),
])
async def test_an_undelivered_report_fails_the_message_with_the_codes_meaning(client, admin, twilio, channel, worker,
                                                                              code, words):
    conv = await open_chat(client, admin, twilio, channel)
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    (message,) = twilio.messages
    await twilio.report(client, message, "sent")
    await twilio.report(client, message, "undelivered", error_code=code)
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed" and words in shown["status_reason"] and code in shown["status_reason"]


async def test_a_report_that_beats_the_outbox_is_applied_when_the_sid_is_stored(client, admin, twilio, channel,
                                                                                worker, monkeypatch):
    conv = await open_chat(client, admin, twilio, channel)
    sent = await reply(client, admin, conv, "hello")
    real_send = worker._send

    async def send_then_report_at_once(work):  # type: ignore[no-untyped-def]
        result = await real_send(work)
        # Twilio's report arrives before the outbox has recorded the sid it was given.
        r = await twilio.report(client, twilio.messages[-1], "delivered")
        assert r.status_code == 200
        return result

    monkeypatch.setattr(worker, "_send", send_then_report_at_once)
    await worker.run_due()
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "delivered"


async def test_a_messaging_service_sends_instead_of_a_number(client, admin, twilio, channel, worker):
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers, json={"settings": {
        "api_base_url": twilio.url, "account_sid": ACCOUNT_SID, "messaging_service_sid": "MG" + "a" * 32,
        "status_callback": False}})
    assert r.status_code == 200, r.text
    conv = await open_chat(client, admin, twilio, channel)
    await reply(client, admin, conv, "hello")
    await worker.run_due()
    assert twilio.calls[0].form == {"To": CUSTOMER, "MessagingServiceSid": "MG" + "a" * 32, "Body": "hello"}


async def test_a_channel_needs_a_sender(client, admin, twilio):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "sms", "name": "SMS", "settings": {"account_sid": ACCOUNT_SID},
        "credentials": {"auth_token": AUTH_TOKEN}})
    assert r.status_code == 422 and "from_number or messaging_service_sid" in r.json()["detail"]


async def test_a_long_reply_is_split_above_1600_characters(client, admin, twilio, channel, worker):
    conv = await open_chat(client, admin, twilio, channel)
    text = " ".join(f"word{n:04d}" for n in range(500))  # 4,499 characters: three parts cut between words
    sent = await reply(client, admin, conv, text)
    await worker.run_due()
    bodies = [m.body for m in twilio.messages]
    assert len(bodies) == 3 and all(len(b) <= 1600 for b in bodies) and " ".join(bodies) == text
    callbacks = [c.form.get("StatusCallback") for c in twilio.calls]
    assert callbacks == [None, None, f"{hook(channel)}?status=1"], "reports are asked for the last part only"
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


async def test_buttons_become_numbered_lines(client, admin, runtime, twilio, channel, worker):
    conv = await open_chat(client, admin, twilio, channel)
    sent = await reply(client, admin, conv, "Is tomorrow fine?")

    async def offer(tx):  # type: ignore[no-untyped-def]
        msg = await tx.session.get(Message, sent["id"])
        msg.payload = {"buttons": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]}

    await runtime.db.write(offer)
    await worker.run_due()
    assert twilio.messages[0].body == "Is tomorrow fine?\n1. Yes\n2. No"


async def test_rate_limits_wait_for_retry_after_and_server_errors_are_retried(client, admin, twilio, channel, worker,
                                                                              clock):
    conv = await open_chat(client, admin, twilio, channel)
    sent = await reply(client, admin, conv, "hello")
    twilio.answer(Answer.too_many_requests(120), Answer.server_error())
    await worker.run_due()
    assert [c.status for c in twilio.calls] == [429]
    clock.tick(119)
    assert await worker.run_due() == 0, "Twilio asked for 120 seconds"
    clock.tick(2)
    await worker.run_due()
    assert [c.status for c in twilio.calls] == [429, 500]
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "queued"
    clock.tick(60)
    await worker.run_due()
    assert [c.status for c in twilio.calls] == [429, 500, 201]
    assert (await shown_message(client, admin, conv, sent["id"]))["status"] == "sent"


@pytest.mark.parametrize(("to", "unsubscribed", "words"), [
    ("+123", False, "+123 is not a valid phone number"),
    (CUSTOMER, True, "replied STOP"),
])
async def test_permanent_errors_fail_the_reply_with_a_sentence(client, admin, runtime, twilio, channel, worker, clock,
                                                               to, unsubscribed, words):
    if unsubscribed:
        twilio.unsubscribed.add(CUSTOMER)
    r = await twilio.post_signed(client, hook(channel), twilio.inbound_params(sender=to, to=FROM_NUMBER, body="hi"))
    assert r.status_code == 200
    conv = int((await only_conversation(client, admin))["id"])
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed" and words in shown["status_reason"], shown["status_reason"]
    clock.tick(3600)
    assert await worker.run_due() == 0 and len(twilio.calls) == 1


async def test_wrong_credentials_fail_with_a_sentence(client, admin, twilio, channel, worker):
    conv = await open_chat(client, admin, twilio, channel)
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"credentials": {"auth_token": "1" * 32}})
    assert r.status_code == 200
    sent = await reply(client, admin, conv, "hello")
    await worker.run_due()
    shown = await shown_message(client, admin, conv, sent["id"])
    assert shown["status"] == "failed" and "auth_token" in shown["status_reason"]


async def test_the_type_is_offered_with_its_settings_and_credentials(client, admin):
    import kommutator.channels.types.sms as package

    assert package.__all__ == ["SmsChannel"]
    types = {t["type"]: t for t in (await client.get("/api/v1/channel-types", headers=admin.headers)).json()}
    assert types["sms"]["settings_schema"]["required"] == ["account_sid"]
    assert set(types["sms"]["credentials_schema"]["properties"]) == {"auth_token"}
