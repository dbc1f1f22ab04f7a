"""The email channel in a real mail set-up (issues 12 and 22): what a sending MTA such as Postfix delivers
(bare-LF lines, lines over 64 KiB, a dot after a bare LF), what people send that is not text (an Outlook
.msg, a multipart without its boundary), raw mail kept byte for byte (windows-1251, KOI8-R), attachment
names with every printable character, and replies through a relay that wants a qualified HELO name.

Real SMTP exchanges on loopback: smtplib or a raw socket against our listener, our replies against an
aiosmtpd relay that refuses a non-qualified HELO name as Postfix does (at RCPT, smtpd_delay_reject=yes).
"""

# The email channel's fixtures are imported by name below, and tests take them as arguments (F811).
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import random
import re
import smtplib
import socket
import unicodedata
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.responses import FileResponse

from kommutator.channels.base import ChannelConfig, OutboundMessage, SendError
from kommutator.channels.types.email import SmtpListener
from kommutator.channels.types.email.imap import poll_once
from kommutator.channels.types.email.parsing import parse_email
from kommutator.channels.types.email.parsing import safe_filename as email_safe_filename
from kommutator.channels.types.email.sending import send_blocking
from kommutator.channels.types.email.smtp_server import read_data
from kommutator.clock import now
from kommutator.conversations.files import safe_filename as store_safe_filename
from kommutator.ingest.actions import raw_body
from kommutator.ingest.models import InboundEvent
from kommutator.net.guard import OutboundGuard

# Fixtures and helpers of the email channel's main tests (pytest finds fixtures by name in this module).
from .test_channel_email import (  # noqa: F401
    CUSTOMER,
    SUPPORT,
    Provider,
    channel,
    channel_settings,
    clock,
    conversation,
    count,
    host,
    inbound_messages,
    listener,
    mail,
    mailbox,
    provider,
    reply,
    settings,
    worker,
)

LOOPBACK = OutboundGuard(["127.0.0.1"])  # the relay in these tests is a loopback fake

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def send_bytes(port: int, data: bytes, *, mail_from: str = CUSTOMER, to: str = SUPPORT) -> str:
    """Deliver ``data`` with smtplib exactly as given (bytes are not converted to CRLF, as a sending server
    that stored the mail with bare LF line ends would); the final answer as 'CODE text'."""
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.sender.example", timeout=30) as client:
            client.ehlo()
            client.sendmail(mail_from, [to], data)
            return "250 delivered"
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return f"{exc.smtp_code} {error.decode() if isinstance(error, bytes) else error}"


def raw_exchange(port: int, commands: list[bytes]) -> list[bytes]:
    """Speak SMTP on a socket, byte for byte; the server's reply lines after each command."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        stream = sock.makefile("rb")
        stream.readline()  # greeting
        for command in commands:
            sock.sendall(command)
            lines = [stream.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(stream.readline())
            answers.append(lines[-1])
    return answers


async def stored_raw(runtime) -> list[bytes]:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        rows = (await s.execute(select(InboundEvent).order_by(InboundEvent.id))).scalars().all()
    return [raw_body(row) for row in rows]


# --- What a sending MTA delivers (issue 12) --------------------------------------------------------------


async def test_a_bare_lf_mail_over_64_kib_is_taken_with_its_lines_normalised(runtime, listener, clock):
    lines = [f"Строка {n}: заказ 1042 всё ещё не пришёл, проверьте, пожалуйста." for n in range(1100)]
    body = "\n".join([lines[0], ".точка в начале строки", *lines[1:]])
    raw = (f"From: Анна <{CUSTOMER}>\nTo: {SUPPORT}\nSubject: long\nMessage-ID: <lf@customer.example>\n"
           "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
           f"{body}\n").encode()
    assert len(raw) > 64 * 1024 and b"\r" not in raw
    answer = await asyncio.to_thread(send_bytes, listener.port, raw)
    assert answer.startswith("250"), f"a bare-LF mail must not bounce (Postfix takes it): {answer}"
    (message,) = await inbound_messages(runtime)
    assert message.text.startswith(lines[0]) and message.text.endswith(lines[-1])
    assert "\n.точка в начале строки\n" in message.text, "the dot smtplib doubled is undone"
    (stored,) = await stored_raw(runtime)
    # smtplib ends the data with CRLF before the final dot; bare LF is stored as CRLF, as Postfix delivers it.
    assert stored.endswith(raw.replace(b"\n", b"\r\n") + b"\r\n")


async def test_a_line_over_64_kib_is_taken_whole(runtime, listener, clock):
    long_line = "x" * 90_000  # over 64 KiB, under the 100,000 characters a message shows
    raw = (f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: one long line\r\nMessage-ID: <long@customer.example>"
           f"\r\n\r\nstart {long_line} end\r\n").encode()
    answer = await asyncio.to_thread(send_bytes, listener.port, raw)
    assert answer.startswith("250"), f"a long line must not be refused for good ('500 Line too long'): {answer}"
    (message,) = await inbound_messages(runtime)
    assert message.text == f"start {long_line} end"


async def test_only_crlf_dot_crlf_ends_the_mail(runtime, listener, clock):
    """A dot after a bare LF is content: no second mail can be smuggled into one (CVE-2023-51764)."""
    smuggled = (b"From: mallory@evil.example\r\nSubject: one\r\nMessage-ID: <one@evil.example>\r\n\r\nfirst\n.\n"
                b"MAIL FROM:<ceo@shop.example>\r\nRCPT TO:<support@shop.example>\r\nDATA\r\n"
                b"From: ceo@shop.example\r\nSubject: smuggled\r\n\r\npay now\r\n.\r\n")
    answers = await asyncio.to_thread(raw_exchange, listener.port, [
        b"EHLO mx.evil.example\r\n", b"MAIL FROM:<mallory@evil.example>\r\n", b"RCPT TO:<support@shop.example>\r\n",
        b"DATA\r\n", smuggled, b"QUIT\r\n"])
    assert [a[:3] for a in answers] == [b"250", b"250", b"250", b"354", b"250", b"221"]
    (message,) = await inbound_messages(runtime)
    assert "pay now" in message.payload["email"]["text"] and "MAIL FROM" in message.text


async def test_a_mail_over_the_size_cap_is_refused_with_552_after_data_and_the_session_goes_on(
        runtime, host, channel, clock):
    small = SmtpListener(host, max_message_bytes=100_000)
    await small.start("127.0.0.1", 0)
    huge = b"Subject: big\r\n\r\n" + b"y" * 300_000 + b"\r\n"

    def one_session() -> tuple[int, dict[str, Any]]:
        with smtplib.SMTP("127.0.0.1", small.port, local_hostname="mx.sender.example", timeout=30) as client:
            client.ehlo()
            client.esmtp_features.pop("size")  # a sender that does not declare the size (else MAIL is refused)
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail(CUSTOMER, [SUPPORT], huge)
            with pytest.raises(smtplib.SMTPDataError) as refused_too:
                client.sendmail(CUSTOMER, [SUPPORT], b"Subject: many lines\r\n\r\n" + (b"z" * 70 + b"\r\n") * 3000)
            assert refused_too.value.smtp_code == 552
            return refused.value.smtp_code, client.sendmail(CUSTOMER, [SUPPORT], mail())

    try:
        code, second = await asyncio.to_thread(one_session)
    finally:
        await small.stop()
    assert code == 552 and second == {}, "the mail over the cap is refused, the next one in the session taken"
    assert len(await inbound_messages(runtime)) == 1


# --- Content that is not text (issue 12) ----------------------------------------------------------------


def binary_file(size: int, magic: bytes = OLE_MAGIC) -> bytes:
    """Binary data like an Outlook .msg (NUL bytes, controls); without lone CR and LF, which SMTP cannot carry,
    and ending with CRLF, as every mail does."""
    rng = random.Random(7)
    data = bytes(b for b in rng.randbytes(size * 2) if b not in (10, 13))[:size]
    return magic + b"\x00" * 64 + data + b"\r\n"


async def test_an_outlook_msg_sent_as_the_mail_is_kept_as_an_attachment(client, admin, runtime, listener, clock):
    msg_file = binary_file(150_000)
    answer = await asyncio.to_thread(send_bytes, listener.port, msg_file)
    assert answer.startswith("250"), answer
    (message,) = await inbound_messages(runtime)
    shown = (await conversation(client, admin, message.conversation_id))["messages"][0]
    assert len(shown["text"]) < 500, "no wall of garbled characters"
    assert "could not be shown as text" in shown["text"] and "не удалось показать как текст" in shown["text"]
    assert "message.msg" in shown["text"]
    (att,) = shown["attachments"]
    assert (att["filename"], att["content_type"]) == ("message.msg", "application/vnd.ms-outlook")
    got = await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)
    assert got.content == msg_file


async def test_a_mail_whose_body_is_a_binary_file_keeps_its_headers_and_attaches_the_body(
        client, admin, runtime, listener, clock):
    pdf_like = binary_file(20_000, magic=b"%PDF-1.7\x00")
    raw = (f"From: Анна <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: Акт\r\nMessage-ID: <bin@customer.example>\r\n"
           "\r\n").encode() + pdf_like
    assert (await asyncio.to_thread(send_bytes, listener.port, raw)).startswith("250")
    (message,) = await inbound_messages(runtime)
    conv = await conversation(client, admin, message.conversation_id)
    shown = conv["messages"][0]
    assert conv["contact"]["email"] == CUSTOMER and shown["payload"]["email"]["subject"] == "Акт"
    assert shown["text"].startswith("The content of this mail could not be shown as text")
    (att,) = shown["attachments"]
    assert (att["filename"], att["content_type"]) == ("document.pdf", "application/pdf")
    assert (await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)).content == pdf_like


MISSING_BOUNDARY = b"""\
From: anna@customer.example
To: support@shop.example
Subject: Invoice
Message-ID: <nobound@customer.example>
MIME-Version: 1.0
Content-Type: multipart/mixed

--==b0und4ry
Content-Type: text/plain; charset=utf-8

Invoice attached.
--==b0und4ry
Content-Type: application/pdf; name="invoice.pdf"
Content-Transfer-Encoding: base64

""" + base64.encodebytes(b"%PDF-1.4 " + bytes(range(256)) * 40) + b"""--==b0und4ry--
"""


def test_a_multipart_without_its_boundary_is_split_by_the_delimiter_it_uses():
    parsed = parse_email(MISSING_BOUNDARY)
    assert parsed.text == "Invoice attached."
    (pdf,) = parsed.attachments
    assert (pdf.filename, pdf.content_type) == ("invoice.pdf", "application/pdf")
    assert pdf.data == b"%PDF-1.4 " + bytes(range(256)) * 40
    assert parsed.unreadable == ()


def test_an_unsplittable_encoded_body_is_attached_as_a_mail_file_not_shown_as_base64():
    encoded = base64.encodebytes(bytes(range(256)) * 40)
    raw = (b"From: anna@customer.example\nSubject: scan\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
           b"Content-Type: image/jpeg\nContent-Transfer-Encoding: base64\n\n" + encoded)
    parsed = parse_email(raw)
    assert parsed.text == "" and parsed.unreadable == ("message.eml",)
    (eml,) = parsed.attachments
    assert eml.content_type == "message/rfc822" and encoded.splitlines()[0] in eml.data


def test_utf16_text_is_still_text():
    message = EmailMessage()
    message["From"] = CUSTOMER
    message.set_content("Привет, это UTF-16".encode("utf-16"), maintype="text", subtype="plain",
                        params={"charset": "utf-16"})
    parsed = parse_email(message.as_bytes())
    assert parsed.unreadable == () and "Привет, это UTF-16" in parsed.text


# --- Raw mail kept byte for byte (issue 22) -------------------------------------------------------------


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r"])
async def test_raw_mail_in_a_russian_charset_is_stored_and_returned_byte_exact(client, admin, runtime, listener,
                                                                             charset, clock):
    text = "Здравствуйте! Заказ 1042 не пришёл, посылка потерялась. Ёлка, щётка, объём, ЪЫЬЭЮЯ."
    raw = (f"From: =?{charset}?b?{base64.b64encode('Анна'.encode(charset)).decode()}?= <{CUSTOMER}>\r\n"
           f"To: {SUPPORT}\r\nSubject: Заказ\r\nMessage-ID: <{charset}@customer.example>\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"{text}\r\n").encode(charset)
    assert (await asyncio.to_thread(send_bytes, listener.port, raw)).startswith("250")
    (message,) = await inbound_messages(runtime)
    assert message.text == text
    received = f"Return-Path: <{CUSTOMER}>\r\n".encode() + raw
    (stored,) = await stored_raw(runtime)
    assert stored == received, "the stored raw mail must be the bytes received, not a lossy UTF-8 reading"
    r = await client.get(f"/api/v1/messages/{message.id}/raw", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.content == received and r.headers["content-type"] == "message/rfc822"
    assert "attachment" in r.headers["content-disposition"]
    assert parse_email(r.content).text == text, "re-parsing the returned original gives the same text"


async def test_raw_mail_taken_over_imap_is_kept_byte_exact(client, admin, runtime, host, channel, mailbox, clock):
    state, _ = mailbox
    text = "Добрый день! Счёт 7 оплачен, жду акт. Ёж, щётка, ЪЫЬЭЮЯ."
    raw = (f"From: Anna <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: =?koi8-r?b?7c/T?=\r\n"
           "Message-ID: <imap-koi8@customer.example>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"{text}\r\n").encode("koi8-r")
    state.add(raw)
    (cfg,) = [c for c in await host.channels("email") if c.id == channel["id"]]
    assert (await poll_once(host, cfg)).taken == 1
    (message,) = await inbound_messages(runtime)
    assert message.text == text
    r = await client.get(f"/api/v1/messages/{message.id}/raw", headers=admin.headers)
    assert r.status_code == 200 and r.content == raw, "IMAP gives the mail as stored: kept exactly so"


async def test_the_raw_original_is_hidden_like_its_conversation(client, admin, factory, runtime, listener, clock):
    assert (await asyncio.to_thread(send_bytes, listener.port, mail())).startswith("250")
    (message,) = await inbound_messages(runtime)
    outsider = await factory.user("agent")
    r = await client.get(f"/api/v1/messages/{message.id}/raw", headers=outsider.headers)
    assert r.status_code == 404
    r = await client.get("/api/v1/messages/999999/raw", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"
    note = await client.post(f"/api/v1/conversations/{message.conversation_id}/messages", headers=admin.headers,
                             json={"text": "checked", "kind": "note"})
    r = await client.get(f"/api/v1/messages/{note.json()['id']}/raw", headers=admin.headers)
    assert r.status_code == 404 and r.json()["code"] == "raw_not_found"


# --- Replies through a relay that wants a qualified HELO name (issue 22) -----------------------------------


def _qualified(name: str) -> bool:
    return "." in name.strip("[]") and name != "localhost"


class FqdnRelay(Provider):
    """Postfix with ``smtpd_helo_restrictions = reject_non_fqdn_helo_hostname``: the refusal comes at RCPT."""

    helo_names: list[str]

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        self.helo_names.append(str(session.host_name))
        if not _qualified(str(session.host_name)):
            return (f"504 5.5.2 <{session.host_name}>: Helo command rejected: need fully-qualified hostname")
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture
async def relay() -> AsyncIterator[FqdnRelay]:
    fake = FqdnRelay()
    fake.helo_names = []
    await fake.start()
    yield fake
    await fake.stop()


async def email_channel(client, admin, relay: FqdnRelay, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "email", "name": "Support mail", "settings": {**channel_settings(relay), **extra}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_relay_refusing_the_helo_name_is_explained_to_the_administrator_and_the_reply_waits(
        client, admin, runtime, host, relay, worker, clock):
    made = await email_channel(client, admin, relay)  # the public URL is http://testserver: not qualified
    smtp = SmtpListener(host, hostname="mx.shop.example")
    await smtp.start("127.0.0.1", 0)
    try:
        assert (await asyncio.to_thread(send_bytes, smtp.port, mail())).startswith("250")
    finally:
        await smtp.stop()
    (incoming,) = await inbound_messages(runtime)
    sent = await reply(client, admin, incoming.conversation_id, "Заказ передан курьеру")
    await worker.run_due()
    assert relay.helo_names == ["testserver"], "the default HELO name is the public URL's host"
    shown = (await conversation(client, admin, incoming.conversation_id))["messages"][-1]
    assert shown["id"] == sent["id"] and shown["status"] == "queued", "a set-up problem must not fail the reply"
    reason = shown["status_reason"]
    assert "HELO name 'testserver'" in reason and "smtp_helo_name" in reason and "Helo command rejected" in reason
    assert "refused the address" not in reason and CUSTOMER not in reason, "the customer's address is not at fault"
    health = (await client.get(f"/api/v1/channels/{made['id']}", headers=admin.headers)).json()["health"]
    assert (health["status"], health["error_code"]) == ("failing", "config"), \
        "the channel's set-up is wrong: its health must say so, with the same sentence, to the administrator"
    assert health["last_error"] and health["last_error"] in reason, (health["last_error"], reason)

    r = await client.patch(f"/api/v1/channels/{made['id']}", headers=admin.headers,
                           json={"settings": {**made["settings"], "smtp_helo_name": "support.shop.example"}})
    assert r.status_code == 200, r.text
    clock[0] += dt.timedelta(minutes=5)
    await worker.run_due()
    assert relay.helo_names[-1] == "support.shop.example" and len(relay.delivered) == 1
    shown = (await conversation(client, admin, incoming.conversation_id))["messages"][-1]
    assert shown["status"] == "sent"


async def test_the_connection_test_finds_a_helo_name_refused_only_at_rcpt(client, admin, relay, clock):
    """Postfix checks the HELO name at RCPT: the test asks for the support address (and resets, sending nothing)
    so that 'Test connection' does not pass while every reply is refused."""
    made = await email_channel(client, admin, relay)
    r = await client.post(f"/api/v1/channels/{made['id']}/test", headers=admin.headers)
    assert r.status_code == 200, r.text
    (smtp,) = r.json()["checks"]
    assert not r.json()["ok"] and not smtp["ok"], r.json()
    assert "HELO name 'testserver'" in smtp["detail"] and "smtp_helo_name" in smtp["detail"], smtp
    assert r.json()["health"]["error_code"] == "config"
    assert relay.delivered == [], "the connection test sends nothing"

    r = await client.patch(f"/api/v1/channels/{made['id']}", headers=admin.headers,
                           json={"settings": {**made["settings"], "smtp_helo_name": "support.shop.example"}})
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/channels/{made['id']}/test", headers=admin.headers)
    assert r.json()["ok"], r.json()
    assert relay.helo_names[-1] == "support.shop.example" and relay.delivered == []


async def test_the_helo_name_defaults_to_the_public_urls_host(settings, relay, clock):
    cfg = ChannelConfig(id=1, type="email", name="x", enabled=True, settings=channel_settings(relay),
                        credentials={}, webhook_url="https://support.shop.example/webhooks/1")
    message = OutboundMessage(id=1, idempotency_key="msg_1_1", conversation_id=7, to=CUSTOMER, text="hi",
                              kind="text", created_at=now(), subject="Order")
    await asyncio.to_thread(send_blocking, cfg, message, LOOPBACK)
    assert relay.helo_names == ["support.shop.example"] and len(relay.delivered) == 1
    on_ip = dataclasses.replace(cfg, webhook_url="https://203.0.113.7/webhooks/1")
    await asyncio.to_thread(send_blocking, on_ip, message, LOOPBACK)
    assert relay.helo_names[-1] == "[203.0.113.7]", "an address is given as an address literal"


@pytest.mark.parametrize("name", ["shop example", "-bad.example", "a..b", "[not-an-ip]"])
async def test_a_bad_helo_name_is_refused_with_the_field(client, admin, relay, name):
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "email", "name": "Bad", "settings": {**channel_settings(relay), "smtp_helo_name": name}})
    assert r.status_code == 422 and r.json()["detail"].startswith("settings.smtp_helo_name"), r.text


# --- Attachment names, the channel's answer (issue 22) ---------------------------------------------------

NAMES = ["Акт приёмки №7.pdf", "«Договор» 2031 — итог 😀.docx", "Résumé café naïve.pdf", "👨‍👩‍👧 семья.png"]


async def test_attachment_names_keep_every_printable_character(client, admin, runtime, listener, clock):
    message = EmailMessage()
    message["From"] = f"Анна <{CUSTOMER}>"
    message["To"] = SUPPORT
    message["Subject"] = "Документы"
    message["Message-ID"] = "<names@customer.example>"
    message.set_content("Документы во вложении.")
    for n, name in enumerate(NAMES):
        message.add_attachment(b"file %d" % n, maintype="application", subtype="octet-stream",
                               filename=name)
    assert (await asyncio.to_thread(send_bytes, listener.port, message.as_bytes())).startswith("250")
    (incoming,) = await inbound_messages(runtime)
    shown = (await conversation(client, admin, incoming.conversation_id))["messages"][0]
    assert [a["filename"] for a in shown["attachments"]] == NAMES
    first = await client.get(f"/api/v1/attachments/{shown['attachments'][0]['id']}", headers=admin.headers)
    assert first.headers["content-disposition"] == (
        "attachment; filename*=utf-8''%D0%90%D0%BA%D1%82%20%D0%BF%D1%80%D0%B8%D1%91%D0%BC%D0%BA%D0%B8%20"
        "%E2%84%967.pdf")


@pytest.mark.parametrize(("name", "safe"), [
    ("../../etc/Счёт <b>.pdf", "Счёт _b_.pdf"),
    ("invoice\u202egpj.exe", "invoice_gpj.exe"),
    ('a:b|c?.txt', "a_b_c_.txt"),
    ("many   spaces .txt", "many spaces .txt"),
    ("snake__case.txt", "snake__case.txt"),
])
async def test_unsafe_characters_in_uploaded_names_are_still_replaced(client, admin, runtime, listener, name, safe,
                                                                      clock):
    assert (await asyncio.to_thread(send_bytes, listener.port, mail())).startswith("250")
    (incoming,) = await inbound_messages(runtime)
    r = await client.post(f"/api/v1/conversations/{incoming.conversation_id}/attachments", headers=admin.headers,
                          files={"file": (name, b"data", "application/pdf")}, data={"kind": "note"})
    assert r.status_code == 201, r.text
    assert r.json()["attachments"][0]["filename"] == safe


async def test_an_email_channel_shows_no_webhook_url(client, admin, relay):
    made = await email_channel(client, admin, relay)
    assert made["webhook_url"] == "" and "SMTP" in made["setup"]
    listed = (await client.get(f"/api/v1/channels/{made['id']}", headers=admin.headers)).json()
    assert listed["webhook_url"] == ""
    api = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM"}, headers=admin.headers)
    assert api.json()["webhook_url"].endswith(f"/webhooks/{api.json()['id']}"), "other types keep theirs"


class HeloRefusingRelay(FqdnRelay):
    """A relay that refuses a non-qualified name at once, at EHLO and HELO (Exim, Exchange)."""

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        self.helo_names.append(hostname)
        if _qualified(hostname):
            session.host_name = hostname
            return responses
        return ["550 5.7.1 HELO/EHLO must contain a FQDN"]

    async def handle_HELO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str) -> str:
        return "550 5.7.1 HELO/EHLO must contain a FQDN"


async def test_a_relay_refusing_the_name_at_ehlo_is_explained_too(runtime, clock):
    relay = HeloRefusingRelay()
    relay.helo_names = []
    await relay.start()
    try:
        cfg = ChannelConfig(id=1, type="email", name="x", enabled=True, settings=channel_settings(relay),
                            credentials={}, webhook_url="http://testserver/webhooks/1")
        message = OutboundMessage(id=1, idempotency_key="msg_1_1", conversation_id=7, to=CUSTOMER, text="hi",
                                  kind="text", created_at=now(), subject="Order")
        with pytest.raises(SendError) as caught:
            await asyncio.to_thread(send_blocking, cfg, message, LOOPBACK)
        assert caught.value.retryable and "HELO name 'testserver'" in caught.value.reason
        assert "must contain a FQDN" in caught.value.reason and "smtp_helo_name" in caught.value.reason
        named = dataclasses.replace(cfg, settings={**cfg.settings, "smtp_helo_name": "support.shop.example"})
        await asyncio.to_thread(send_blocking, named, message, LOOPBACK)
        assert len(relay.delivered) == 1
    finally:
        await relay.stop()


@pytest.mark.parametrize(("charset", "text"), [("iso-2022-jp", "こんにちは、ご注文の件です。"),
                                               ("iso-2022-kr", "안녕하세요 고객님, 주문은 배송 중입니다.")])
def test_seven_bit_iso_2022_text_is_decoded_not_taken_for_ascii_or_binary(charset: str, text: str):
    message = EmailMessage()
    message["From"] = CUSTOMER
    message.set_content(text, charset=charset)
    parsed = parse_email(message.as_bytes())
    assert parsed.text == text and parsed.unreadable == ()


_line = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_line, st.sampled_from([b"\r\n", b"\n"])), max_size=40),
       st.integers(min_value=16, max_value=200))
def test_the_data_reader_undoes_what_a_sender_does(lines: list[tuple[bytes, bytes]], chunk: int):
    """Whatever the lines and line ends, and however small the stream's pieces: the mail read is the mail
    sent (dots unstuffed, bare LF as CRLF), and an oversized mail is read to its end and refused."""
    data = b"".join(line + end for line, end in lines)
    wire = re.sub(rb"(?m)^\.", b"..", data)  # smtplib's dot-stuffing, also after a bare LF
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    wire += b".\r\nNEXT COMMAND\r\n"
    expected = b"".join(line + b"\r\n" for line, _ in lines) + (b"" if data.endswith(b"\r\n") else b"\r\n")

    async def read(limit: int) -> tuple[bytes | None, bytes]:
        reader = asyncio.StreamReader(limit=chunk)
        reader.feed_data(wire)
        reader.feed_eof()
        return await read_data(reader, limit), await reader.read()

    assert asyncio.run(read(10_000_000)) == (expected, b"NEXT COMMAND\r\n")
    if len(wire) > 40:
        assert asyncio.run(read(20)) == (None, b"NEXT COMMAND\r\n")


# --- Download names: every printable character kept, nothing that breaks a path or a header ----------------

_KEPT = st.sampled_from([*"Актприёмки№7«»—–„“”‘’éèçñüößøåÆŒ€$%&'()+,;=@[]^`{}~!#",
    "😀", "👨\u200d👩\u200d👧", "🇷🇺", "e\u0301", "中文", "العربية", "7", "z", " "])


@given(st.lists(_KEPT, min_size=1, max_size=20).map("".join), st.sampled_from([".pdf", ".docx", ".png", ""]))
@hsettings(max_examples=200, deadline=None)
def test_download_names_keep_printable_characters(stem: str, ext: str):
    name = " ".join(stem.split()) + ext  # single spaces: runs of white space are folded, by design
    expected = unicodedata.normalize("NFC", name).strip(" ._") or None
    got = store_safe_filename(email_safe_filename(name, "application/pdf"))
    if expected is not None and len(expected) <= 140:
        assert got == expected, "a printable character of the name was dropped or replaced"


@given(st.text(min_size=0, max_size=300))
@hsettings(max_examples=300, deadline=None)
def test_any_attachment_name_gives_a_safe_download_header(name: str):
    safe = store_safe_filename(email_safe_filename(name, "application/pdf"))
    assert safe and len(safe) <= 200 and safe not in (".", "..")
    assert not any(c in safe for c in '/\\\x00"<>:|?*') and "\r" not in safe and "\n" not in safe
    assert all(unicodedata.category(c) not in ("Cc", "Zl", "Zp", "Cs") for c in safe)
    header = FileResponse(__file__, filename=safe, content_disposition_type="attachment").headers[
        "content-disposition"]
    assert header.isascii() and "\r" not in header and "\n" not in header
    parsed = EmailMessage()
    parsed["Content-Disposition"] = header
    assert parsed.get_content_disposition() == "attachment" and parsed.get_filename() == safe, header
