"""The email channel as a mail system meets it: real SMTP exchanges on loopback (smtplib as the sending
server, our listener receiving; aiosmtpd as the customer's provider receiving our replies), a fake IMAP
server for polling, and the REST API to see what agents see.

Every sample mail in shared/data/email goes through the listener twice: nothing crashes, nothing is lost,
nothing is doubled. Bounces mark our reply failed and open nothing; replies thread; IMAP polling takes each
mail once across restarts and UIDVALIDITY changes; outbound mail carries threading headers and the same
Message-ID on every attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
import re
import smtplib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kommutator.channels.base import ChannelConfig, InboundMessage, InboundStatus, OutboundMessage, SendError
from kommutator.channels.host import Host
from kommutator.channels.types.email import EmailServices, ImapPollError, SmtpListener, poll_once
from kommutator.channels.types.email import adapter as email_adapter
from kommutator.channels.types.email.inbound import items_from, items_from_raw
from kommutator.channels.types.email.parsing import parse_email
from kommutator.channels.types.email.sending import message_id_for, send_blocking, subject_for
from kommutator.channels.types.email.settings import EmailSettings
from kommutator.clock import now, set_clock
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.ingest.models import InboundEvent
from kommutator.net.guard import OutboundGuard
from kommutator.workers import outbox as outbox_module
from kommutator.workers.models import OutboxItem
from kommutator.workers.outbox import OutboxWorker

from .fakes.imap_server import FakeImapServer, ImapState

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "email"
SUPPORT = "support@shop.example"
CUSTOMER = "anna@customer.example"
IMAP_PASSWORD = "imap-secret-1"

# The core routes a mail into the conversation it answers only with InboundMessage's threading fields
# (docs/channels/email.md, "Threading"); until then those tests are expected to fail.
CORE_THREADING = "thread_ids" in {f.name for f in dataclasses.fields(InboundMessage)}
needs_core_threading = pytest.mark.xfail(not CORE_THREADING, strict=True,
                                         reason="needs InboundMessage.thread_ids/conversation_hint in the core")


# --- The customer's mail provider (receives our replies) -------------------------------------------------


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip("<>")


@dataclass
class Provider:
    """An SMTP server (aiosmtpd) that records what it accepted; queue answers to refuse or defer."""

    rcpt_answers: list[str] = field(default_factory=list)
    data_answers: list[str] = field(default_factory=list)
    delivered: list[Delivered] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str | None = None
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.rcpt_answers:
            return self.rcpt_answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_answers:
            return self.data_answers.pop(0)
        self.delivered.append(Delivered(envelope.mail_from or "", list(envelope.rcpt_tos),
                                        envelope.original_content or b""))
        return "250 2.0.0 Ok: queued as 4F2"

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=password == self.password, handled=False)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            if self.password is None:
                return SMTP(self, hostname="mx.customer.example", loop=loop)
            return SMTP(self, hostname="mx.customer.example", loop=loop, authenticator=self._authenticate,
                        auth_require_tls=False)

        self._server = await loop.create_server(factory, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


# --- Sending mail to our listener as another mail server would -------------------------------------------


def crlf(raw: bytes) -> bytes:
    """Line ends as SMTP carries them (a sending server converts stored mail before DATA)."""
    return re.sub(rb"\r\n|\r(?!\n)|\n", b"\r\n", raw)


def smtp_send(port: int, raw: bytes, *, mail_from: str = CUSTOMER, to: tuple[str, ...] = (SUPPORT,)) -> str:
    """Deliver ``raw`` with smtplib; the server's final answer, e.g. '250 2.0.0 OK: delivered', or the
    refusal as 'CODE text' (smtplib raises for those)."""
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.sender.example", timeout=30) as client:
            client.ehlo()
            refused = client.sendmail(mail_from, list(to), crlf(raw))
            assert not refused, refused
            return "250 delivered"
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        return f"{code} {reply.decode()}"
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return f"{exc.smtp_code} {error.decode() if isinstance(error, bytes) else error}"


async def deliver(port: int, raw: bytes, **kw: Any) -> str:
    return await asyncio.to_thread(smtp_send, port, raw, **kw)


def mail(*, subject: str = "Где мой заказ?", body: str = "Здравствуйте! Заказ 1042 не пришёл.",
         sender: str = CUSTOMER, name: str = "Анна", message_id: str | None = "c1@customer.example",
         in_reply_to: str | None = None, references: tuple[str, ...] = (), headers: dict[str, str] | None = None,
         attachment: tuple[str, bytes] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = f"Shop <{SUPPORT}>"
    msg["Subject"] = subject
    msg["Date"] = "Sat, 01 Mar 2031 09:00:00 +0300"
    if message_id:
        msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes()


def dsn(original_id: str, *, action: str = "failed", status: str = "5.1.1", bounce_id: str = "b1@mx.customer.example",
        diagnostic: str = "smtp; 550 5.1.1 <anna@customer.example>: Recipient address rejected: User unknown") -> bytes:
    """A delivery status notification as Postfix writes it (RFC 3464)."""
    return f"""\
Return-Path: <>
From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)
To: {SUPPORT}
Subject: Undelivered Mail Returned to Sender
Date: Sat, 01 Mar 2031 09:05:00 +0000
Message-ID: <{bounce_id}>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.customer.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B0UND
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example
X-Postfix-Queue-ID: 4F2
Arrival-Date: Sat,  1 Mar 2031 09:04:59 +0000

Final-Recipient: rfc822; {CUSTOMER}
Original-Recipient: rfc822;{CUSTOMER}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.customer.example
Diagnostic-Code: {diagnostic}

--B0UND
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Shop support <{SUPPORT}>
To: {CUSTOMER}
Subject: Re: Where is my order
Message-ID: <{original_id}>

--B0UND--
""".encode()


# --- Fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
def clock() -> Iterator[list[dt.datetime]]:
    current = [now()]
    set_clock(lambda: current[0])
    yield current
    set_clock(None)


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    fake = Provider()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[ImapState, FakeImapServer]]:
    state = ImapState(SUPPORT, IMAP_PASSWORD)
    with FakeImapServer(state) as server:
        yield state, server


def channel_settings(provider: Provider, imap_port: int = 0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"address": SUPPORT, "display_name": "Shop support", "inbound": ["smtp"],
                            "smtp_host": "127.0.0.1", "smtp_port": provider.port, "smtp_security": "none"}
    if imap_port:
        body.update(inbound=["smtp", "imap"], imap_host="127.0.0.1", imap_port=imap_port, imap_security="none",
                    poll_seconds=30)
    body.update(extra)
    return body


@pytest.fixture
async def channel(client, admin, provider, mailbox) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    _, server = mailbox
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "email", "name": "Support mail", "settings": channel_settings(provider, server.port),
        "credentials": {"imap_password": IMAP_PASSWORD}})
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
def host(runtime) -> Host:  # type: ignore[no-untyped-def]
    return Host(runtime)


@pytest.fixture
async def listener(host, channel) -> AsyncIterator[SmtpListener]:  # type: ignore[no-untyped-def]
    smtp = SmtpListener(host, max_message_bytes=5_000_000, hostname="mx.shop.example")
    await smtp.start("127.0.0.1", 0)
    yield smtp
    await smtp.stop()


@pytest.fixture
async def worker(runtime) -> AsyncIterator[OutboxWorker]:  # type: ignore[no-untyped-def]
    w = OutboxWorker(runtime, name="mail-worker")
    yield w
    await w.stop()


async def config(host: Host, channel: dict[str, Any]) -> ChannelConfig:
    (found,) = [c for c in await host.channels("email") if c.id == channel["id"]]
    return found


async def inbound_messages(runtime) -> list[Message]:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return list((await s.execute(select(Message).where(Message.direction == "in")
                                     .order_by(Message.id))).scalars())


async def count(runtime, model: Any) -> int:  # type: ignore[no-untyped-def]
    async with runtime.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def conversation(client, admin, conv_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.get(f"/api/v1/conversations/{conv_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def reply(client, admin, conv_id: int, text: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.post(f"/api/v1/conversations/{conv_id}/messages", json={"text": text}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def customer_writes(listener: SmtpListener, runtime, raw: bytes) -> Message:  # type: ignore[no-untyped-def]
    assert (await deliver(listener.port, raw)).startswith("250")
    return (await inbound_messages(runtime))[-1]


# --- The sample corpus through the SMTP listener --------------------------------------------------------


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.rglob("*.eml")) if SAMPLES.is_dir() else []


def envelope_sender(raw: bytes) -> str:
    parsed = parse_email(raw)
    if parsed.bounce is not None or (parsed.from_address or "").startswith(("mailer-daemon@", "postmaster@")):
        return ""  # bounces travel with the null reverse-path
    return parsed.from_address or "unknown@sender.example"


@pytest.mark.skipif(not sample_files(), reason=f"no sample mail under {SAMPLES}")
async def test_every_sample_mail_is_taken_once_and_none_crashes_the_pipeline(runtime, listener, clock):
    files = sample_files()
    expected_messages: set[str] = set()
    bounces = 0
    for path in files:
        raw = path.read_bytes()
        parsed = parse_email(crlf(raw))
        if parsed.bounce is not None:
            bounces += 1
        else:
            expected_messages.add(f"mid:{parsed.message_id}" if parsed.message_id else f"file:{path}")
        for attempt in (1, 2):
            answer = await deliver(listener.port, raw, mail_from=envelope_sender(raw))
            assert answer.startswith("250"), f"{path.relative_to(SAMPLES)} (attempt {attempt}) was refused: {answer}"
    assert bounces >= 5, "the corpus holds bounces; the parser must recognise them"
    messages = await inbound_messages(runtime)
    assert len(messages) == len(expected_messages), \
        "each mail that is not a bounce becomes exactly one message (mails sharing a Message-ID are one mail)"
    ids = [m.provider_message_id for m in messages]
    assert len(ids) == len(set(ids))
    for key in expected_messages:
        if key.startswith("mid:"):
            assert key.removeprefix("mid:") in ids, f"the mail {key} was lost"
    async with runtime.db.read() as s:
        failed = (await s.execute(select(InboundEvent.provider_event_id, InboundEvent.error)
                                  .where(InboundEvent.status == "failed"))).all()
        daemons = (await s.execute(select(Contact.email).where(Contact.email.like("mailer-daemon@%")))).all()
        conversations = await s.scalar(select(func.count()).select_from(Conversation))
    assert failed == [], f"events that could not be processed: {failed}"
    assert daemons == [], "a bounce must never open a conversation with the mailer daemon"
    assert conversations is not None and conversations <= len(messages)
    for m in messages:
        assert isinstance(m.payload.get("auto_submitted"), bool)
        assert set(m.payload["email"]) >= {"subject", "text", "html", "to", "cc", "message_id", "in_reply_to",
                                           "references"}


async def test_a_customer_mail_becomes_a_conversation_with_the_original_kept(client, admin, runtime, listener,
                                                                            clock):
    raw = mail(body="Здравствуйте! Заказ 1042 не пришёл.\n\n-- \nАнна Петрова\n+7 900 000-00-00",
               attachment=("чек.pdf", b"%PDF-1.4 receipt"))
    msg = await customer_writes(listener, runtime, raw)
    conv = await conversation(client, admin, msg.conversation_id)
    (shown,) = conv["messages"]
    assert shown["text"].startswith("Здравствуйте! Заказ 1042 не пришёл.")
    assert "+7 900" not in shown["text"], "the signature is stripped in the chat view"
    assert "+7 900" in shown["payload"]["email"]["text"], "the full original stays available"
    assert shown["payload"]["email"]["subject"] == "Где мой заказ?"
    assert shown["payload"]["email"]["message_id"] == "c1@customer.example"
    assert shown["payload"]["auto_submitted"] is False
    (att,) = shown["attachments"]
    assert att["filename"] == "чек.pdf" and att["size"] == len(b"%PDF-1.4 receipt")
    assert conv["contact"]["email"] == CUSTOMER and conv["contact"]["name"] == "Анна"
    got = await client.get(f"/api/v1/attachments/{att['id']}", headers=admin.headers)
    assert got.content == b"%PDF-1.4 receipt"
    if CORE_THREADING:
        assert conv["subject"] == "Где мой заказ?"


async def test_automatic_mail_is_flagged_so_nothing_answers_it(client, admin, runtime, listener, clock):
    raw = mail(subject="Out of office", body="I am away until Monday.", message_id="ooo@customer.example",
               headers={"Auto-Submitted": "auto-replied"})
    msg = await customer_writes(listener, runtime, raw)
    assert msg.payload["auto_submitted"] is True and msg.payload["auto_reason"]


# --- The SMTP listener's answers ------------------------------------------------------------------------


async def test_the_listener_refuses_addresses_it_does_not_serve(client, admin, runtime, listener, provider, clock):
    assert (await deliver(listener.port, mail(), to=("sales@shop.example",))).startswith("550")
    assert (await deliver(listener.port, mail(), to=("support@other.example",))).startswith("550")
    # An IMAP-only channel's address is not delivered here either.
    imap_only = {**channel_settings(provider), "address": "billing@shop.example", "inbound": ["imap"],
                 "imap_host": "127.0.0.1"}
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "email", "name": "Billing", "settings": imap_only})
    assert r.status_code == 201, r.text
    listener.forget_channels()
    assert (await deliver(listener.port, mail(), to=("billing@shop.example",))).startswith("550")
    assert await count(runtime, Message) == 0
    # Sub-addresses and case reach the channel.
    assert (await deliver(listener.port, mail(), to=("Support+orders@Shop.Example",))).startswith("250")
    assert await count(runtime, Message) == 1


async def test_a_disabled_channel_receives_nothing(client, admin, runtime, listener, channel, clock):
    r = await client.patch(f"/api/v1/channels/{channel['id']}", json={"enabled": False}, headers=admin.headers)
    assert r.status_code == 200, r.text
    listener.forget_channels()
    assert (await deliver(listener.port, mail())).startswith("550")


async def test_a_mail_over_the_size_cap_is_refused_with_552(runtime, host, channel, clock):
    small = SmtpListener(host, max_message_bytes=10_000)
    await small.start("127.0.0.1", 0)
    try:
        answer = await deliver(small.port, mail(body="x" * 40 + "\n" * 1 + ("y" * 70 + "\n") * 300))
    finally:
        await small.stop()
    assert answer.startswith("552"), answer
    assert await count(runtime, Message) == 0


async def test_data_is_answered_451_when_the_commit_fails_and_the_retry_is_taken_once(runtime, host, listener,
                                                                                     monkeypatch, clock):
    real = Host.ingest
    calls = {"n": 0}

    async def down_once(self, channel, items, raw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the database is away")
        return await real(self, channel, items, raw)

    monkeypatch.setattr(Host, "ingest", down_once)
    first = await deliver(listener.port, mail())
    assert first.startswith("451"), "a mail that was not committed must stay with the sender, who retries"
    assert await count(runtime, Message) == 0
    assert (await deliver(listener.port, mail())).startswith("250")
    assert (await deliver(listener.port, mail())).startswith("250"), "a repeat is accepted and dropped"
    assert await count(runtime, Message) == 1


async def test_a_mail_from_the_support_address_itself_is_not_taken(runtime, listener, clock):
    answer = await deliver(listener.port, mail(sender=SUPPORT, message_id="loop@shop.example"), mail_from=SUPPORT)
    assert answer.startswith("250")
    assert await count(runtime, Message) == 0


# --- Replies out ----------------------------------------------------------------------------------------


async def test_a_reply_is_a_threaded_mail_from_the_support_address(client, admin, runtime, listener, provider,
                                                                  worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "Добрый день! Заказ передан курьеру.\n\nСлужба поддержки")
    assert await worker.run_due() == 1
    (got,) = provider.delivered
    out = got.message
    assert got.mail_from == SUPPORT and got.rcpt_tos == [CUSTOMER]
    assert out["From"].addresses[0].addr_spec == SUPPORT and out["From"].addresses[0].display_name == "Shop support"
    assert out["To"].addresses[0].addr_spec == CUSTOMER
    conv_id = msg.conversation_id
    assert str(out["Subject"]).endswith(f"[#{conv_id}]") and str(out["Subject"]).startswith("Re: ")
    assert out["In-Reply-To"] == "<c1@customer.example>"
    assert "<c1@customer.example>" in str(out["References"])
    assert out["Auto-Submitted"] == "no"
    assert got.message_id.endswith("@shop.example")
    plain = out.get_body(("plain",))
    html_part = out.get_body(("html",))
    assert plain is not None and html_part is not None
    assert plain.get_content_charset() == "utf-8"
    assert "Заказ передан курьеру" in plain.get_content()
    assert "Заказ передан курьеру" in html_part.get_content() and "<p>" in html_part.get_content()
    shown = (await conversation(client, admin, conv_id))["messages"][-1]
    assert shown["id"] == sent["id"] and shown["status"] == "sent"
    async with runtime.db.read() as s:
        stored = await s.get(Message, sent["id"])
    assert stored is not None and stored.provider_message_id == got.message_id, \
        "the Message-ID is stored so that a bounce finds the message"


async def test_the_same_message_id_on_a_resend_after_a_crash(client, admin, runtime, listener, provider, worker,
                                                            monkeypatch, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "hello")
    real = outbox_module.do_record_outcome
    calls = {"n": 0}

    async def crash_once(tx, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died here")
        return await real(tx, **kw)

    monkeypatch.setattr(outbox_module, "do_record_outcome", crash_once)
    await worker.run_due()
    clock[0] += worker.lease + dt.timedelta(seconds=1)
    successor = OutboxWorker(runtime, name="successor")
    try:
        assert await successor.run_due() == 1
    finally:
        await successor.stop()
    assert len(provider.delivered) == 2
    first, second = provider.delivered
    assert first.message_id == second.message_id, "the receiver drops the resend by its Message-ID"
    assert first.message["Date"] == second.message["Date"]
    async with runtime.db.read() as s:
        stored = await s.get(Message, sent["id"])
    assert stored is not None and stored.status == "sent"


async def test_a_temporary_refusal_is_retried_and_a_permanent_one_fails_with_the_reason(
        client, admin, runtime, listener, provider, worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "first")
    provider.data_answers.append("451 4.7.1 Greylisted, please try again later")
    await worker.run_due()
    async with runtime.db.read() as s:
        item = (await s.execute(select(OutboxItem).where(OutboxItem.message_id == sent["id"]))).scalar_one()
    assert item.status == "pending" and "451" in item.last_error and "Greylisted" in item.last_error
    assert provider.delivered == []
    clock[0] += dt.timedelta(minutes=1)
    await worker.run_due()
    assert len(provider.delivered) == 1
    assert (await conversation(client, admin, msg.conversation_id))["messages"][-1]["status"] == "sent"

    refused = await reply(client, admin, msg.conversation_id, "second")
    provider.rcpt_answers.append("550 5.1.1 <anna@customer.example>: Recipient address rejected: User unknown")
    await worker.run_due()
    shown = next(m for m in (await conversation(client, admin, msg.conversation_id))["messages"]
                 if m["id"] == refused["id"])
    assert shown["status"] == "failed"
    assert "550" in shown["status_reason"] and "User unknown" in shown["status_reason"]
    assert CUSTOMER in shown["status_reason"]
    assert len(provider.delivered) == 1


async def test_an_unreachable_mail_server_is_retried(client, admin, runtime, listener, channel, worker, clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"settings": {**channel["settings"], "smtp_port": closed_port}})
    assert r.status_code == 200, r.text
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "hello")
    await worker.run_due()
    async with runtime.db.read() as s:
        item = (await s.execute(select(OutboxItem).where(OutboxItem.message_id == sent["id"]))).scalar_one()
    assert item.status == "pending" and "cannot reach the mail server" in item.last_error


async def test_smtp_login_and_a_wrong_password(runtime, provider, clock):
    provider.password = "smtp-right"
    await provider.stop()
    await provider.start()
    cfg = ChannelConfig(id=1, type="email", name="x", enabled=True, settings=channel_settings(provider),
                        credentials={"smtp_password": "smtp-right"})
    message = OutboundMessage(id=1, idempotency_key="msg_1_1", conversation_id=7, to=CUSTOMER, text="hi",
                              kind="text", created_at=now(), subject="Order")
    loopback = OutboundGuard(["127.0.0.1"])
    result = await asyncio.to_thread(send_blocking, cfg, message, loopback)
    assert provider.logins == [(SUPPORT, "smtp-right")]
    assert result.provider_message_id == message_id_for("msg_1_1", "shop.example")
    wrong = dataclasses.replace(cfg, credentials={"smtp_password": "smtp-wrong"})
    with pytest.raises(SendError) as caught:
        await asyncio.to_thread(send_blocking, wrong, message, loopback)
    assert caught.value.retryable and "refused the login" in caught.value.reason
    assert "smtp_password" in caught.value.reason


async def test_an_agents_attachment_travels_in_the_mail(client, admin, runtime, listener, provider, worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    r = await client.post(f"/api/v1/conversations/{msg.conversation_id}/attachments", headers=admin.headers,
                          files={"file": ("invoice.pdf", b"%PDF-1.4 invoice", "application/pdf")},
                          data={"text": "Your invoice", "kind": "text"})
    assert r.status_code == 201, r.text
    await worker.run_due()
    (got,) = provider.delivered
    (att,) = list(got.message.iter_attachments())
    assert att.get_filename() == "invoice.pdf" and att.get_content() == b"%PDF-1.4 invoice"
    assert att.get_content_type() == "application/pdf"


def test_subjects_do_not_pile_up_prefixes_or_tokens():
    assert subject_for(7, "Где мой заказ?") == "Re: Где мой заказ? [#7]"
    assert subject_for(7, "Re: RE: Где мой заказ? [#7]") == "Re: Где мой заказ? [#7]"
    assert subject_for(7, "Ответ: AW: Lieferung") == "Re: Lieferung [#7]"
    assert subject_for(7, "") == "Re: [#7]"
    assert subject_for(7, "line\nbreak") == "Re: line break [#7]"


def test_the_message_id_is_stable_per_message_and_domain():
    one = message_id_for("msg_5_1700000000", "shop.example")
    assert one == message_id_for("msg_5_1700000000", "shop.example")
    assert one != message_id_for("msg_6_1700000000", "shop.example")
    assert one.endswith("@shop.example") and "msg_5" not in one


# --- Bounces --------------------------------------------------------------------------------------------


async def test_a_bounce_marks_our_reply_failed_and_opens_no_conversation(client, admin, runtime, listener,
                                                                         provider, worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "Заказ передан курьеру")
    await worker.run_due()
    (got,) = provider.delivered
    conversations = await count(runtime, Conversation)
    bounce = dsn(got.message_id)
    for _ in range(2):
        assert (await deliver(listener.port, bounce, mail_from="")).startswith("250")
    shown = next(m for m in (await conversation(client, admin, msg.conversation_id))["messages"]
                 if m["id"] == sent["id"])
    assert shown["status"] == "failed"
    assert "User unknown" in shown["status_reason"], "the agent sees why the mail did not arrive"
    assert await count(runtime, Conversation) == conversations, "a bounce never opens a conversation"
    assert len(await inbound_messages(runtime)) == 1


async def test_a_delay_notice_is_not_a_failure(client, admin, runtime, listener, provider, worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "hello")
    await worker.run_due()
    (got,) = provider.delivered
    delayed = dsn(got.message_id, action="delayed", status="4.4.1", bounce_id="d1@mx.customer.example",
                  diagnostic="smtp; 421 4.4.1 Connection timed out; will keep trying")
    assert (await deliver(listener.port, delayed, mail_from="")).startswith("250")
    async with runtime.db.read() as s:
        stored = await s.get(Message, sent["id"])
    assert stored is not None and stored.status == "sent"
    assert len(await inbound_messages(runtime)) == 1


async def test_a_bounce_that_beats_the_outbox_is_applied_when_the_id_is_stored(client, admin, runtime, listener,
                                                                             provider, worker, clock):
    msg = await customer_writes(listener, runtime, mail())
    sent = await reply(client, admin, msg.conversation_id, "hello")
    async with runtime.db.read() as s:
        queued = await s.get(Message, sent["id"])
    assert queued is not None
    # The outbox's idempotency key for the message (workers/outbox.py), hence the Message-ID it will carry.
    expected_id = message_id_for(f"msg_{sent['id']}_{int(queued.created_at.timestamp())}", "shop.example")
    assert (await deliver(listener.port, dsn(expected_id), mail_from="")).startswith("250")
    await worker.run_due()
    assert provider.delivered[0].message_id == expected_id
    async with runtime.db.read() as s:
        stored = await s.get(Message, sent["id"])
    assert stored is not None and stored.status == "failed"


# --- Threading ------------------------------------------------------------------------------------------


async def test_a_new_mail_while_the_conversation_is_open_joins_it(runtime, listener, clock):
    first = await customer_writes(listener, runtime, mail())
    second = await customer_writes(listener, runtime, mail(subject="Ещё вопрос", message_id="c2@customer.example"))
    assert second.conversation_id == first.conversation_id


@needs_core_threading
async def test_a_reply_to_our_mail_threads_into_its_conversation_even_when_resolved(
        client, admin, runtime, listener, provider, worker, clock):
    first = await customer_writes(listener, runtime, mail())
    await reply(client, admin, first.conversation_id, "Заказ передан курьеру")
    await worker.run_due()
    (ours,) = provider.delivered
    r = await client.post(f"/api/v1/conversations/{first.conversation_id}/status", json={"status": "resolved"},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
    # Meanwhile the customer opened another conversation about something else.
    other = await customer_writes(listener, runtime, mail(subject="Другой вопрос", message_id="c2@customer.example"))
    assert other.conversation_id != first.conversation_id
    answer = mail(subject="Re: Где мой заказ?", body="Спасибо, получила!\n\n> Заказ передан курьеру",
                  message_id="c3@customer.example", in_reply_to=ours.message_id,
                  references=("c1@customer.example", ours.message_id))
    threaded = await customer_writes(listener, runtime, answer)
    assert threaded.conversation_id == first.conversation_id, "a reply goes to the conversation it answers"
    conv = await conversation(client, admin, first.conversation_id)
    assert conv["status"] in ("queued", "assigned") and conv["reopened_at"] is not None
    assert conv["messages"][-1]["text"] == "Спасибо, получила!"


@needs_core_threading
async def test_the_subject_token_threads_a_mail_that_lost_its_headers(client, admin, runtime, listener, clock):
    first = await customer_writes(listener, runtime, mail())
    r = await client.post(f"/api/v1/conversations/{first.conversation_id}/status", json={"status": "resolved"},
                          headers=admin.headers)
    assert r.status_code == 200, r.text
    forwarded = mail(subject=f"Fwd: Re: Где мой заказ? [#{first.conversation_id}]", message_id="c9@customer.example")
    later = await customer_writes(listener, runtime, forwarded)
    assert later.conversation_id == first.conversation_id


async def test_another_customers_token_or_reference_is_not_followed(client, admin, runtime, listener, clock):
    anna = await customer_writes(listener, runtime, mail())
    intruder = mail(sender="mallory@evil.example", name="Mallory", message_id="m1@evil.example",
                    subject=f"Re: [#{anna.conversation_id}]", in_reply_to="c1@customer.example")
    theirs = await customer_writes(listener, runtime, intruder)
    assert theirs.conversation_id != anna.conversation_id, "a stranger cannot write into someone's conversation"


# --- IMAP polling ---------------------------------------------------------------------------------------


async def test_imap_polling_takes_new_mail_once_and_marks_it_seen(runtime, host, channel, mailbox, clock):
    state, _ = mailbox
    uid1 = state.add(crlf(mail()))
    uid2 = state.add(crlf(mail(subject="Второе", message_id="c2@customer.example")))
    cfg = await config(host, channel)
    result = await poll_once(host, cfg)
    assert result.taken == 2 and not result.more
    assert len(await inbound_messages(runtime)) == 2
    assert state.flags(uid1) == state.flags(uid2) == {"\\Seen"}
    assert any("BODY.PEEK[]" in c for c in state.commands), "fetching must not mark mail seen before commit"
    assert await host.get_state(cfg.id, "last_uid") == str(uid2)
    state.commands.clear()
    again = await poll_once(host, cfg)
    assert again.taken == 0
    assert not any(c.startswith("UID FETCH") for c in state.commands), \
        "'UID n:*' also answers the last UID below n; it must not be fetched again"
    uid3 = state.add(crlf(mail(subject="Третье", message_id="c3@customer.example")))
    assert (await poll_once(host, cfg)).taken == 1
    assert len(await inbound_messages(runtime)) == 3
    assert await host.get_state(cfg.id, "last_uid") == str(uid3)


async def test_imap_polling_resumes_after_a_restart(runtime, settings, channel, mailbox, clock):
    state, _ = mailbox
    state.add(crlf(mail()))
    first_host = Host(runtime)
    await poll_once(first_host, await config(first_host, channel))
    # A new process: nothing but the database carries over.
    from kommutator.runtime import Runtime

    other = Runtime.build(settings)
    await other.db.start()
    try:
        second_host = Host(other)
        cfg = await config(second_host, channel)
        assert (await poll_once(second_host, cfg)).taken == 0
        state.add(crlf(mail(subject="После перезапуска", message_id="c2@customer.example")))
        assert (await poll_once(second_host, cfg)).taken == 1
    finally:
        await other.db.close()
    assert len(await inbound_messages(runtime)) == 2


async def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(runtime, host, channel, mailbox, clock):
    state, _ = mailbox
    state.add(crlf(mail()))
    state.add(crlf(mail(subject="Второе", message_id="c2@customer.example")))
    state.add(crlf(b"From: Bob <bob@customer.example>\nSubject: no id\n\nA mail without a Message-ID\n"))
    cfg = await config(host, channel)
    await poll_once(host, cfg)
    assert len(await inbound_messages(runtime)) == 3
    state.renumber()
    state.add(crlf(mail(subject="Новое", message_id="c4@customer.example")))
    result = await poll_once(host, cfg)
    assert result.taken == 4, "the renumbered folder is read again from the start"
    assert len(await inbound_messages(runtime)) == 4, "mails already taken are not taken twice"
    assert await host.get_state(cfg.id, "uidvalidity") == "1001"


async def test_imap_failures_lose_nothing(runtime, host, channel, mailbox, monkeypatch, clock):
    state, _ = mailbox
    uids = [state.add(crlf(mail(subject=f"Письмо {n}", message_id=f"c{n}@customer.example"))) for n in range(3)]
    cfg = await config(host, channel)
    state.fail("UID FETCH")  # the first fetch fails
    with pytest.raises(ImapPollError, match="UID FETCH"):
        await poll_once(host, cfg)
    assert await inbound_messages(runtime) == []
    # The commit of the second mail fails: the first is kept, the second and third wait.
    real = Host.ingest
    calls = {"n": 0}

    async def fail_second(self, channel, items, raw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("the database is away")
        return await real(self, channel, items, raw)

    monkeypatch.setattr(Host, "ingest", fail_second)
    with pytest.raises(ConnectionError):
        await poll_once(host, cfg)
    assert await host.get_state(cfg.id, "last_uid") == str(uids[0])
    assert state.flags(uids[1]) == set(), "a mail that was not committed is not marked seen"
    state.fail("LOGOUT", "DROP")
    await poll_once(host, cfg)
    assert len(await inbound_messages(runtime)) == 3
    assert await host.get_state(cfg.id, "last_uid") == str(uids[2])


async def test_a_wrong_imap_password_says_what_to_fix(client, admin, host, channel, mailbox, clock):
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"credentials": {"imap_password": "wrong-password"}})
    assert r.status_code == 200, r.text
    with pytest.raises(ImapPollError) as caught:
        await poll_once(host, await config(host, channel))
    assert "refused the login" in str(caught.value) and "imap_password" in str(caught.value)


async def test_a_missing_folder_says_so(client, admin, host, channel, mailbox, clock):
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"settings": {**channel["settings"], "imap_folder": "Support Tickets"}})
    assert r.status_code == 200, r.text
    with pytest.raises(ImapPollError, match="Support Tickets"):
        await poll_once(host, await config(host, channel))


# --- The long-running work ------------------------------------------------------------------------------


async def test_run_starts_the_listener_and_polls_the_mailbox(runtime, host, channel, mailbox, monkeypatch, clock):
    state, _ = mailbox
    state.add(crlf(mail(message_id="polled@customer.example")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(email_adapter.LISTEN_ENV, f"127.0.0.1:{port}")
    services = EmailServices(host, tick=0.02)
    task = asyncio.create_task(services.run())
    try:
        for _ in range(500):
            if services.listener is not None and len(await inbound_messages(runtime)) == 1:
                break
            await asyncio.sleep(0.01)
        assert services.listener is not None and services.listener.port == port
        assert (await deliver(port, mail(message_id="smtp@customer.example"))).startswith("250")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    ids = {m.provider_message_id for m in await inbound_messages(runtime)}
    assert ids == {"polled@customer.example", "smtp@customer.example"}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


# --- Configuration and the webhook route ----------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"address": "Shop <support@shop.example>"}, "settings.address"),
    ({"inbound": ["imap"], "imap_host": None}, "settings"),
    ({"inbound": ["pop3"]}, "settings.inbound"),
    ({"smtp_host": "smtp.example.com/evil"}, "settings.smtp_host"),
    ({"imap_folder": 'IN"BOX'}, "settings.imap_folder"),
])
async def test_bad_settings_are_refused_with_the_field(client, admin, provider, change, field):
    body = {k: v for k, v in {**channel_settings(provider), **change}.items() if v is not None}
    r = await client.post("/api/v1/channels", headers=admin.headers,
                          json={"type": "email", "name": "Bad", "settings": body})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_channel_config" and r.json()["detail"].startswith(field)


async def test_the_webhook_route_explains_that_mail_comes_by_smtp_or_imap(client, admin, channel):
    r = await client.post(f"/webhooks/{channel['id']}", content=b"{}")
    assert r.status_code == 404 and r.json()["code"] == "no_webhook_for_email"
    assert "SMTP" in channel["setup"] and "imap_password" in channel["setup"]


def test_settings_defaults():
    s = EmailSettings.model_validate({"address": "Support@Shop.Example", "smtp_host": "smtp.shop.example"})
    assert s.address == "support@shop.example" and s.inbound == ["smtp"]
    assert (s.smtp_port_or_default, s.imap_port_or_default) == (587, 993)


# --- Arbitrary input ------------------------------------------------------------------------------------


@hsettings(max_examples=60, deadline=None)
@given(raw=st.one_of(st.binary(max_size=2000),
                     st.builds(lambda h, b: h + b"\r\n\r\n" + b, st.sampled_from([
                         b"From: x@y.example\r\nContent-Type: multipart/report; report-type=delivery-status; "
                         b"boundary=q", b"Message-ID: <>\r\nIn-Reply-To: <<<", b"From: \xff\xfe@\x00",
                         b"Subject: =?utf-8?b?!!!?=\r\nReferences: " + b"<a@b> " * 100]), st.binary(max_size=500))))
def test_any_bytes_become_items_without_raising(raw):
    cfg = ChannelConfig(id=1, type="email", name="x", enabled=True, credentials={},
                        settings={"address": SUPPORT, "smtp_host": "127.0.0.1"})
    items = items_from_raw(cfg, raw, envelope_from=None)
    assert len(items) <= 1
    for item in items:
        assert len(item.event_id) <= 255
        if isinstance(item, InboundMessage):
            assert item.sender.external_id and len(item.text) <= 100_000
        else:
            assert isinstance(item, InboundStatus) and item.status in ("failed", "delivered")


def test_a_bounce_becomes_a_status_not_a_message():
    cfg = ChannelConfig(id=1, type="email", name="x", enabled=True, credentials={},
                        settings={"address": SUPPORT, "smtp_host": "127.0.0.1"})
    (item,) = items_from(cfg, parse_email(crlf(dsn("kmt.abc@shop.example"))))
    assert isinstance(item, InboundStatus)
    assert (item.provider_message_id, item.status) == ("kmt.abc@shop.example", "failed")
    assert "User unknown" in item.reason

