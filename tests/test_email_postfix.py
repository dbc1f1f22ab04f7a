"""A real Postfix in front of the SMTP listener, set up as docs/channels/email.md says (issue 22).

The recipe is read from the docs page itself (the ``main.cf`` lines, the transport and recipient maps, the
``master.cf`` transport, and the recipient-verification alternative), so a recipe that does not work fails
here. A private Postfix instance runs from a temporary directory (its own config, queue and data
directories, one smtpd on a free loopback port; no other instance is touched) in front of our listener.
The test speaks to Postfix over SMTP as a mail server on the internet would: Postfix's XCLIENT command
(allowed for 127.0.0.1 in this instance only) gives the session an outside address, so loopback's
``mynetworks`` privileges do not hide what the recipe does for real senders.

Skipped when Postfix is not installed (Debian: ``apt-get install postfix``, "No configuration") or cannot
be started by this user (only root can run a Postfix instance).
"""

# The email channel's fixtures are imported by name below, and tests take them as arguments (F811).
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kommutator.channels.types.email import SmtpListener
from kommutator.channels.types.email.parsing import parse_email
from kommutator.config import Settings

from .live_server import free_port

# Fixtures and helpers of the email channel's main tests (pytest finds fixtures by name in this module).
from .test_channel_email import (  # noqa: F401
    CUSTOMER,
    SUPPORT,
    channel,
    clock,
    conversation,
    host,
    inbound_messages,
    mail,
    mailbox,
    provider,
    reply,
    settings,
    worker,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "channels" / "email.md"
POSTFIX = shutil.which("postfix") or next((p for p in ("/usr/sbin/postfix",) if os.access(p, os.X_OK)), None)
OUTSIDE = "ADDR=203.0.113.25 NAME=mx.customer.example"  # a sending server on the internet (XCLIENT)
# The listener's limit in these tests, scaled down from the default so the mails stay small; Postfix's
# message_size_limit keeps the docs' margin below it.
LISTENER_LIMIT = 1_000_000
DEADLINE = 60.0  # seconds for Postfix to hand a mail over


def _why_not() -> str | None:
    if POSTFIX is None:
        return "Postfix is not installed (no postfix command; Debian: apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance can only be started by root (its daemons switch to the postfix user)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "there is no 'postfix' user for the Postfix daemons to run as"
    return None


needs_postfix = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


# --- The recipe, as the docs write it --------------------------------------------------------------------


@dataclass
class Recipe:
    main_cf: str
    transport: str
    relay_recipients: str
    master_cf: str
    verify_restrictions: str
    verify_reject_code: str


def recipe() -> Recipe:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Postfix in front of the listener", 1)[1].split("\n## ", 1)[0]

    def block_after(label: str) -> str:
        found = re.search(re.escape(label) + r"[^\n]*\n\n```\n(.*?)```", section, re.S)
        assert found, f"docs/channels/email.md: no code block after {label!r}"
        return found.group(1)

    restrictions = re.search(r"`smtpd_recipient_restrictions =\s*([^`]+)`", section)
    code = re.search(r"`unverified_recipient_reject_code = (\d+)`", section)
    assert restrictions and code, "docs/channels/email.md: the recipient-verification alternative is missing"
    return Recipe(block_after("`main.cf`:"), block_after("`/etc/postfix/transport`"),
                  block_after("`/etc/postfix/relay_recipients`"), block_after("`master.cf`, the transport"),
                  " ".join(restrictions.group(1).split()), code.group(1))


def documented_size_limit(main_cf: str) -> int:
    found = re.search(r"^message_size_limit = (\d+)$", main_cf, re.M)
    assert found, "the recipe sets message_size_limit"
    return int(found.group(1))


def test_the_documented_size_limit_leaves_room_below_the_listeners_default():
    limit = documented_size_limit(recipe().main_cf)
    default = Settings.model_fields["smtp_max_message_bytes"].default
    assert 0 < default - limit <= 200_000, "message_size_limit: a little below the listener's limit"


# --- A private Postfix instance ------------------------------------------------------------------------

# The services a Postfix needs, from Debian's master.cf, without chroot (the instance has no chroot tree).
BASE_MASTER_CF = """\
{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """One Postfix instance in its own directory: ``postfix -c <dir> start`` / ``stop``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "etc"
        self.port = 0

    def run(self, *args: str, check: bool = True) -> str:
        assert POSTFIX is not None
        command = args[0] if "/" in args[0] else str(Path(POSTFIX).parent / args[0])
        done = subprocess.run([command, "-c", str(self.config), *args[1:]], capture_output=True, text=True,
                              timeout=120)
        if check:
            assert done.returncode == 0, f"{' '.join(args)} failed: {done.stdout}{done.stderr}\n{self.log()}"
        return done.stdout + done.stderr

    def log(self) -> str:
        path = self.root / "maillog"
        return "Postfix log:\n" + path.read_text(errors="replace")[-6000:] if path.exists() else "(no Postfix log)"

    def configure(self, docs: Recipe, *, listener_port: int, verify: bool, extra_main_cf: str = "",
                  extra_transport: str = "") -> None:
        self.config.mkdir(parents=True)
        self.port = free_port()
        main_cf = docs.main_cf.replace("/etc/postfix/", f"{self.config}/")
        size = documented_size_limit(main_cf)
        margin = Settings.model_fields["smtp_max_message_bytes"].default - size
        main_cf = main_cf.replace(f"message_size_limit = {size}", f"message_size_limit = {LISTENER_LIMIT - margin}")
        if verify:  # the documented alternative to the recipient list
            main_cf = re.sub(r"^relay_recipient_maps = .*$", "", main_cf, flags=re.M)
            main_cf += (f"smtpd_recipient_restrictions = {docs.verify_restrictions}\n"
                        f"unverified_recipient_reject_code = {docs.verify_reject_code}\n")
        base = f"""\
# A private test instance: its own directories, loopback only.
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
maillog_file_prefixes = {self.root}
maillog_file = {self.root}/maillog
syslog_name = postfix-kommutator-test
myhostname = mx.shop.example
mydestination = localhost
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtputf8_enable = yes
# The test acts as a sending server on the internet (not in mynetworks) through XCLIENT.
smtpd_authorized_xclient_hosts = 127.0.0.1
"""
        (self.config / "main.cf").write_text(base + main_cf + extra_main_cf)
        (self.config / "master.cf").write_text(BASE_MASTER_CF.format(port=f"127.0.0.1:{self.port}")
                                               + docs.master_cf)
        (self.config / "transport").write_text(docs.transport.replace(":2525", f":{listener_port}") + extra_transport)
        (self.config / "relay_recipients").write_text(docs.relay_recipients)
        for name in ("transport", "relay_recipients"):
            self.run("postmap", str(self.config / name))

    def start(self) -> None:
        # The queue belongs to root, the data directory to the postfix user; Postfix makes the rest.
        (self.root / "queue").mkdir(mode=0o755)
        data = self.root / "data"
        data.mkdir(mode=0o700)
        user = pwd.getpwnam("postfix")
        os.chown(data, user.pw_uid, user.pw_gid)
        self.run("postfix", "start")
        self.run("postfix", "check")

    def stop(self) -> None:
        if (self.root / "queue").exists():
            pid_file = self.root / "queue" / "pid" / "master.pid"
            pid = pid_file.read_text().strip() if pid_file.exists() else ""
            self.run("postfix", "stop", check=False)
            deadline = time.monotonic() + 30  # the master ends its daemons, then itself
            while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)

    def queue_is_empty(self) -> bool:
        return "Mail queue is empty" in self.run("postqueue", "-p")


@pytest.fixture
def listener_limit(settings):  # type: ignore[no-untyped-def]
    settings.smtp_max_message_bytes = LISTENER_LIMIT
    return LISTENER_LIMIT


@pytest.fixture
async def listener(host, channel, listener_limit) -> AsyncIterator[SmtpListener]:  # type: ignore[no-untyped-def]
    smtp = SmtpListener(host, max_message_bytes=listener_limit, hostname="kommutator.shop.example")
    await smtp.start("127.0.0.1", 0)
    yield smtp
    await smtp.stop()


def _postfix(listener: SmtpListener, *, verify: bool, extra_main_cf: str = "",
             extra_transport: str = "") -> Iterator[Postfix]:
    # Not under pytest's tmp_path: the daemons, running as the postfix user, must reach the queue.
    root = Path(tempfile.mkdtemp(prefix="kommutator-postfix-"))
    root.chmod(0o755)
    instance = Postfix(root)
    try:
        instance.configure(recipe(), listener_port=listener.port, verify=verify, extra_main_cf=extra_main_cf,
                           extra_transport=extra_transport)
        instance.start()
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postfix(listener) -> Iterator[Postfix]:  # type: ignore[no-untyped-def]
    yield from _postfix(listener, verify=False)


@pytest.fixture
def verifying_postfix(listener) -> Iterator[Postfix]:  # type: ignore[no-untyped-def]
    yield from _postfix(listener, verify=True)


@pytest.fixture
def relaying_postfix(listener, provider) -> Iterator[Postfix]:  # type: ignore[no-untyped-def]
    """The recipe's Postfix also as the relay for replies, strict about HELO names as many relays are, and
    handing mail for the customer's domain to ``provider`` (the customer's mail server) instead of its MX."""
    yield from _postfix(listener, verify=False,
                        extra_main_cf="smtpd_helo_required = yes\n"
                                      "smtpd_helo_restrictions = reject_non_fqdn_helo_hostname\n",
                        extra_transport=f"customer.example    smtp:[127.0.0.1]:{provider.port}\n")


# --- A sending server on the internet -----------------------------------------------------------------


def send(port: int, raw: bytes, *, to: str = SUPPORT, declare_size: bool = True) -> str:
    """Deliver ``raw`` to Postfix from an outside address; '250 …' or the refusal as 'CODE text'."""
    try:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.customer.example", timeout=60) as client:
            client.ehlo()
            code, answer = client.docmd("XCLIENT", OUTSIDE)
            assert code == 220, f"XCLIENT: {code} {answer!r}"
            client.ehlo_resp = None
            client.ehlo()
            if not declare_size:
                client.esmtp_features.pop("size", None)  # as a client that does not use SIZE
            refused = client.sendmail(CUSTOMER, [to], raw)
            assert not refused, refused
            return "250 accepted"
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        return f"{code} {reply.decode()}"
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return f"{exc.smtp_code} {error.decode() if isinstance(error, bytes) else error}"


async def arrived(runtime, postfix: Postfix, count: int) -> list:  # type: ignore[no-untyped-def]
    """The inbound messages once ``count`` have arrived and Postfix's queue is empty (nothing more to come)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        messages = await inbound_messages(runtime)
        if len(messages) >= count and await asyncio.to_thread(postfix.queue_is_empty):
            return messages
        assert time.monotonic() < deadline, (f"{len(messages)} of {count} mails arrived through Postfix\n"
                                             f"{await asyncio.to_thread(postfix.run, 'postqueue', '-p')}"
                                             f"{postfix.log()}")
        await asyncio.sleep(0.1)


# --- The tests ------------------------------------------------------------------------------------------


@needs_postfix
async def test_a_mail_through_postfix_arrives_once_and_unknown_or_oversized_mail_is_refused_at_smtp(
        runtime, listener, postfix, clock):
    long_line = "Строка длиннее 998 байт: " + "ж" * 1200  # HTML or unwrapped text, sent as 8bit
    raw = (f"From: Anna <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: order\r\nMessage-ID: <c1@customer.example>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"Здравствуйте! Заказ 1042 не пришёл.\r\n{long_line}\r\n").encode()
    answer = await asyncio.to_thread(send, postfix.port, raw)
    assert answer.startswith("250"), f"{answer}\n{postfix.log()}"
    (message,) = await arrived(runtime, postfix, 1)
    assert message.text.startswith("Здравствуйте! Заказ 1042 не пришёл.")
    assert long_line in message.payload["email"]["text"], "smtp_line_length_limit=0: the long line is whole"

    # A subaddress is accepted by Postfix (recipient_delimiter) and by the listener.
    answer = await asyncio.to_thread(send, postfix.port, mail(message_id="c2@customer.example"),
                                     to="support+orders@shop.example")
    assert answer.startswith("250"), f"{answer}\n{postfix.log()}"
    assert len(await arrived(runtime, postfix, 2)) == 2

    # Unknown addresses at the domain are refused during the session, never bounced later (backscatter).
    answer = await asyncio.to_thread(send, postfix.port, mail(message_id="c3@customer.example"),
                                     to="nobody@shop.example")
    assert answer.startswith("550") and "nobody@shop.example" in answer, answer
    # Another domain is not relayed for an outside sender.
    answer = await asyncio.to_thread(send, postfix.port, mail(message_id="c4@customer.example"),
                                     to="someone@elsewhere.example")
    assert answer.startswith("454") and "Relay access denied" in answer, answer

    # Over the limit: refused at MAIL FROM when the size is declared, after DATA when not; never queued.
    size_limit = int(postfix.run("postconf", "-h", "message_size_limit").strip())
    assert size_limit < LISTENER_LIMIT
    big = mail(message_id="big@customer.example", body="x" * 76 + "\n", attachment=("big.pdf", b"%" * size_limit))
    for declare_size in (True, False):
        answer = await asyncio.to_thread(send, postfix.port, big, declare_size=declare_size)
        assert answer.startswith("552"), f"declared size {declare_size}: {answer}"
    # Just under Postfix's limit passes the listener too: the margin covers what Postfix adds.
    # (base64: 57 bytes a line of 76 characters and CRLF)
    fits = mail(message_id="fits@customer.example", attachment=("fits.pdf", b"%" * ((size_limit - 8_000) * 57 // 78)))
    assert size_limit - 10_000 < len(fits.replace(b"\n", b"\r\n")) < size_limit
    answer = await asyncio.to_thread(send, postfix.port, fits)
    assert answer.startswith("250"), f"{answer}\n{postfix.log()}"
    messages = await arrived(runtime, postfix, 3)
    assert [m.provider_message_id for m in messages] == ["c1@customer.example", "c2@customer.example",
                                                         "fits@customer.example"]
    log = postfix.log()
    assert "status=bounced" not in log and "status=deferred" not in log, log
    expected = ("queue file size limit exceeded", "mail_stream_cleanup: close error")  # the oversized mail
    warnings = [line for line in log.splitlines() if "warning:" in line and not line.endswith(expected)]
    assert warnings == [], log


@needs_postfix
async def test_with_recipient_verification_postfix_asks_the_listener_and_refuses_unknown_addresses(
        runtime, listener, verifying_postfix, clock):
    postfix = verifying_postfix

    def until_final(to: str, message_id: str) -> str:
        """Postfix answers 450 while its probe of the listener is under way; a sending server retries."""
        deadline = time.monotonic() + DEADLINE
        while True:
            answer = send(postfix.port, mail(message_id=message_id), to=to)
            if not answer.startswith("450") or time.monotonic() > deadline:
                return answer
            time.sleep(0.5)

    answer = await asyncio.to_thread(until_final, SUPPORT, "v1@customer.example")
    assert answer.startswith("250"), f"{answer}\n{postfix.log()}"
    (message,) = await arrived(runtime, postfix, 1)
    assert message.provider_message_id == "v1@customer.example"
    answer = await asyncio.to_thread(until_final, "nobody@shop.example", "v2@customer.example")
    assert answer.startswith("550") and "nobody@shop.example" in answer, f"{answer}\n{postfix.log()}"
    assert len(await arrived(runtime, postfix, 1)) == 1
    assert "status=bounced" not in postfix.log()


@needs_postfix
@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r"])
async def test_a_mail_in_a_russian_charset_through_postfix_is_kept_byte_for_byte(
        client, admin, runtime, listener, postfix, charset, clock):
    text = "Здравствуйте! Заказ 1042 не пришёл. Ёлка, щётка, объём, ЪЫЬЭЮЯ."
    original = (f"From: Anna <{CUSTOMER}>\r\nTo: {SUPPORT}\r\nSubject: =?{charset}?q?=C7=E0=EA=E0=E7?=\r\n"
                f"Date: Sat, 01 Mar 2031 09:00:00 +0300\r\nMessage-ID: <{charset}@customer.example>\r\n"
                f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n").encode(charset)
    answer = await asyncio.to_thread(send, postfix.port, original)
    assert answer.startswith("250"), f"{answer}\n{postfix.log()}"
    (message,) = await arrived(runtime, postfix, 1)
    assert message.text == text
    r = await client.get(f"/api/v1/messages/{message.id}/raw", headers=admin.headers)
    assert r.status_code == 200, r.text
    # What Postfix and the listener add goes before the mail (trace headers); the mail itself is untouched:
    # not re-encoded to quoted-printable (the listener announces 8BITMIME), not read as UTF-8.
    assert r.content.endswith(original), r.content[:2000]
    added = r.content[:-len(original)].decode("ascii").split("\r\n")
    names = {line.split(":", 1)[0] for line in added if line and not line[0].isspace()}
    assert names == {"Return-Path", "Received"}, added


@needs_postfix
async def test_replies_through_postfix_wait_for_a_helo_name_it_accepts_and_its_bounces_fail_them(
        client, admin, runtime, channel, listener, relaying_postfix, provider, worker, clock):
    postfix = relaying_postfix
    # Replies go through the Postfix on this machine, as the docs recommend (loopback is in mynetworks).
    settings = {**channel["settings"], "inbound": ["smtp"], "smtp_host": "127.0.0.1", "smtp_port": postfix.port,
                "smtp_security": "none"}
    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers, json={"settings": settings})
    assert r.status_code == 200, r.text
    assert (await asyncio.to_thread(send, postfix.port, mail())).startswith("250")
    (incoming,) = await arrived(runtime, postfix, 1)

    # The test client's public URL is http://testserver: a name Postfix refuses (at RCPT, smtpd_delay_reject).
    # The connection test finds it, sending nothing.
    tested = (await client.post(f"/api/v1/channels/{channel['id']}/test", headers=admin.headers)).json()
    assert not tested["ok"] and "HELO name 'testserver'" in tested["checks"][0]["detail"], tested
    first = await reply(client, admin, incoming.conversation_id, "Заказ передан курьеру")
    await worker.run_due()
    shown = await message_of(client, admin, incoming.conversation_id, first["id"])
    assert shown["status"] == "queued", "a set-up problem must not fail the reply"
    reason = shown["status_reason"]
    assert "HELO name 'testserver'" in reason and "need fully-qualified hostname" in reason, reason
    assert "smtp_helo_name" in reason and CUSTOMER not in reason, "the administrator is told what to set"
    health = (await client.get(f"/api/v1/channels/{channel['id']}", headers=admin.headers)).json()["health"]
    assert (health["status"], health["error_code"]) == ("failing", "config"), health

    r = await client.patch(f"/api/v1/channels/{channel['id']}", headers=admin.headers,
                           json={"settings": {**settings, "smtp_helo_name": "support.shop.example"}})
    assert r.status_code == 200, r.text
    clock[0] += dt.timedelta(minutes=5)
    await worker.run_due()
    assert (await message_of(client, admin, incoming.conversation_id, first["id"]))["status"] == "sent"
    tested = (await client.post(f"/api/v1/channels/{channel['id']}/test", headers=admin.headers)).json()
    assert tested["ok"], tested
    await until(lambda: len(provider.delivered) == 1, postfix, "the reply reaches the customer's server")
    (delivered,) = provider.delivered
    assert delivered.rcpt_tos == [CUSTOMER] and "Заказ передан курьеру" in parse_email(delivered.raw).text

    # The customer's server refuses the next reply after Postfix took it: Postfix bounces it to the support
    # address, through the recipe's transport to the listener, and the reply turns failed.
    provider.rcpt_answers.append("550 5.1.1 <anna@customer.example>: Recipient address rejected: User unknown")
    second = await reply(client, admin, incoming.conversation_id, "Уточните адрес, пожалуйста")
    await worker.run_due()
    # Postfix took it ("sent"); its bounce may already have come back ("failed"): Postfix does not wait for us.
    assert (await message_of(client, admin, incoming.conversation_id, second["id"]))["status"] in ("sent", "failed")

    async def failed() -> dict[str, Any]:
        return await message_of(client, admin, incoming.conversation_id, second["id"])

    deadline = time.monotonic() + DEADLINE
    while (shown := await failed())["status"] != "failed":
        assert time.monotonic() < deadline, f"no bounce marked the reply failed: {shown}\n{postfix.log()}"
        await asyncio.sleep(0.2)
    assert shown["status_reason"].startswith("Bounced") and "User unknown" in shown["status_reason"], shown
    assert len(await inbound_messages(runtime)) == 1, "a bounce never becomes a customer's message"
    assert (await message_of(client, admin, incoming.conversation_id, first["id"]))["status"] == "sent"


async def message_of(client, admin, conversation_id: int, message_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    shown = await conversation(client, admin, conversation_id)
    (found,) = [m for m in shown["messages"] if m["id"] == message_id]
    return dict(found)


async def until(done: Callable[[], bool], postfix: Postfix, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE} s\n{postfix.log()}"
        await asyncio.sleep(0.1)
