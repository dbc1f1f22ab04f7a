"""Agent replies as mail: a MIME message that threads into the customer's mail client, sent over SMTP.

The Message-ID is derived from the outbox's idempotency key, so a resend after a crash carries the same
id (receivers and our own ingest drop the repeat) and a bounce names the id the outbox stored.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import html
import re
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from typing import Any

from kommutator.channels.base import ChannelConfig, OutboundMessage, SendError, SendResult
from kommutator.channels.oauth import xoauth2
from kommutator.channels.types.email.settings import EmailSettings, tls_context
from kommutator.net.guard import STRICT, OutboundGuard, OutboundRefused
from kommutator.net.mail import GuardedSMTP, GuardedSMTP_SSL, helo_name_for, local_name

SMTP_TIMEOUT = 30.0
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|ответ|отв)\s*(\[\d+\])?\s*:\s*", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
_HELO_WORDS = re.compile(r"\b(?:helo|ehlo)\b", re.IGNORECASE)


def message_id_for(idempotency_key: str, domain: str) -> str:
    """Our Message-ID (without <>): the same for every attempt of one message, unguessable from outside."""
    digest = hashlib.sha256(f"kommutator:{domain}:{idempotency_key}".encode()).hexdigest()[:32]
    return f"kmt.{digest}@{domain}"


def subject_for(conversation_id: int, subject: str) -> str:
    """'Re: <subject> [#id]' without piling up prefixes or tokens."""
    subject = " ".join(subject.split())
    token = f"[#{conversation_id}]"
    while True:
        stripped = _REPLY_PREFIX.sub("", subject, count=1)
        if stripped == subject:
            break
        subject = stripped
    subject = subject.replace(token, "").strip()
    return f"Re: {subject} {token}" if subject else f"Re: {token}"


def _html_body(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>"
            f"<body style=\"font-family: sans-serif; font-size: 14px; line-height: 1.4\">\n{body}\n</body></html>\n")


def _address(addr_spec: str, display_name: str = "") -> Address:
    local, _, domain = addr_spec.rpartition("@")
    return Address(display_name=display_name, username=local, domain=domain)


def _ascii_domain(addr_spec: str) -> str:
    local, _, domain = addr_spec.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"{local}@{domain}"


def build_message(settings: EmailSettings, message: OutboundMessage) -> tuple[EmailMessage, str]:
    """The reply as a MIME message and its Message-ID (without <>)."""
    to = _ascii_domain(message.to.strip())
    if "@" not in to or any(c.isspace() for c in to):
        raise SendError(retryable=False, reason=f"the customer has no email address to reply to ({message.to!r})")
    msg_id = message_id_for(message.idempotency_key, settings.domain)
    msg = EmailMessage()
    msg["From"] = _address(settings.address, settings.display_name)
    msg["To"] = _address(to)
    msg["Subject"] = subject_for(message.conversation_id, message.subject)
    msg["Date"] = email.utils.format_datetime(message.created_at)
    msg["Message-ID"] = f"<{msg_id}>"
    thread = [i for i in message.thread if _MESSAGE_ID.match(i) and i != msg_id]
    if thread:
        msg["In-Reply-To"] = f"<{thread[-1]}>"
        msg["References"] = " ".join(f"<{i}>" for i in thread)
    # RFC 3834: a person wrote this; a customer's auto-responder may answer it.
    msg["Auto-Submitted"] = "no"
    msg["MIME-Version"] = "1.0"
    # base64 for non-ASCII text: 8bit would need the server's 8BITMIME, quoted-printable triples Cyrillic.
    cte = None if message.text.isascii() else "base64"
    msg.set_content(message.text, subtype="plain", charset="utf-8", cte=cte)
    msg.add_alternative(_html_body(message.text), subtype="html", charset="utf-8", cte=cte)
    for att in message.attachments:
        if att.path is None:
            raise SendError(retryable=False, reason=f"the attachment {att.filename!r} is not on this server's disk")
        try:
            data = att.path.read_bytes()
        except OSError as exc:
            raise SendError(retryable=False, reason=f"the attachment {att.filename!r} cannot be read: {exc}") from exc
        maintype, _, subtype = (att.content_type or "application/octet-stream").partition("/")
        if maintype == "multipart" or not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=att.filename)
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the email package repeats it on parts; it belongs on the top only
    return msg, msg_id


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())[:500]


def _refusal(code: int, reply: bytes | str, what: str) -> SendError:
    text = f"{what}: {code} {_reply_text(reply)}".rstrip()
    if 400 <= code < 500:
        return SendError(retryable=True, reason=text + " (temporary; retrying)")
    return SendError(retryable=False, reason=text)


def helo_name(settings: EmailSettings, public_url: str) -> str:
    """The name given in EHLO: the channel's ``smtp_helo_name``, else the one the public URL gives."""
    return settings.smtp_helo_name or helo_name_for(public_url)


def _helo_refused(reply: bytes | str) -> bool:
    return bool(_HELO_WORDS.search(_reply_text(reply)))


def _helo_error(code: int, reply: bytes | str, where: str, helo: str) -> SendError:
    # The mail and the customer's address are fine: this server's set-up is not. Keep the reply queued (as
    # for a refused login) so that it goes out once an administrator has set the name; the channel's health
    # shows it as a set-up problem (failing at once), not as a server that cannot be reached.
    return SendError(retryable=True, channel_problem="config", reason=(
        f"the mail server {where} refused this server's HELO name {helo!r} ({code} {_reply_text(reply)}); an "
        "administrator must set the channel's smtp_helo_name to a fully qualified name of this server that the "
        "relay accepts (e.g. support.shop.example), or KOMMUTATOR_PUBLIC_BASE_URL to the public URL whose host "
        "is the default"))


def _sign_in(client: smtplib.SMTP, settings: EmailSettings, credentials: dict[str, Any]) -> None:
    """AUTH with the password, or XOAUTH2 with the access token; nothing for a relay without login."""
    user = settings.smtp_username or settings.address
    if settings.auth == "oauth2":
        token = credentials.get("oauth_access_token")
        if not token:
            raise SendError(retryable=True, reason="the channel is not signed in to the mailbox: an administrator must "
                                                   "press Sign in on the channel screen", channel_problem="config")
        initial = xoauth2(user, str(token))
        answers = iter([initial])

        def respond(challenge: bytes | None = None) -> str:
            return next(answers, "")  # to a failure's challenge (RFC 7628 3.2.3): an empty line, then 535

        client.auth("XOAUTH2", respond, initial_response_ok=True)
        return
    password = credentials.get("smtp_password")
    if password:
        client.login(user, str(password))


def _login_hint(settings: EmailSettings) -> str:
    if settings.auth == "oauth2":
        return "check that the mailbox allows SMTP sign-in with OAuth and sign in again on the channel screen"
    return "check smtp_username and smtp_password"


def _deliver(settings: EmailSettings, credentials: dict[str, Any], sender: str, recipient: str, data: bytes,
             smtputf8: bool, guard: OutboundGuard) -> None:
    host, port = settings.smtp_host, settings.smtp_port_or_default
    context = tls_context(settings.tls_ca_certificate)
    client: smtplib.SMTP
    if settings.smtp_security == "ssl":
        client = GuardedSMTP_SSL(guard, host, port, local_hostname=local_name(), timeout=SMTP_TIMEOUT,
                                 context=context)
    else:
        client = GuardedSMTP(guard, host, port, local_hostname=local_name(), timeout=SMTP_TIMEOUT)
    try:
        client.local_hostname = settings.smtp_helo_name or client.local_hostname
        client.ehlo_or_helo_if_needed()
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        _sign_in(client, settings, credentials)
        if not recipient:
            _probe_helo(client, sender)  # the connection test: nothing is sent
            return
        options = ["SMTPUTF8"] if smtputf8 else []
        client.sendmail(sender, [recipient], data, mail_options=options)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _probe_helo(client: smtplib.SMTP, address: str) -> None:
    """Begin a mail to ``address`` and reset it: a relay that judges the HELO name only at MAIL or RCPT
    (Postfix's smtpd_delay_reject) refuses there. Any other answer is not the connection test's business."""
    options = [] if address.isascii() else ["SMTPUTF8"]
    if options and not client.has_extn("smtputf8"):
        return  # the address cannot be named to this server; replies will say so
    code, reply = client.mail(address, options)
    if code < 400:
        code, reply = client.rcpt(address)
    client.rset()
    if code >= 400 and _helo_refused(reply):
        raise smtplib.SMTPHeloError(code, reply)


def check_blocking(channel: ChannelConfig, guard: OutboundGuard = STRICT) -> SendResult:
    """Greet the SMTP server (EHLO, STARTTLS, AUTH) and leave without sending: the connection test."""
    settings = EmailSettings.model_validate(channel.settings)
    helo = helo_name(settings, channel.webhook_url)
    where = f"{settings.smtp_host}:{settings.smtp_port_or_default}"
    try:
        _deliver(settings.model_copy(update={"smtp_helo_name": helo}), channel.credentials, settings.address, "", b"",
                 False, guard)
    except OutboundRefused as exc:
        raise SendError(retryable=False, reason=f"smtp_host: {exc.reason}", channel_problem="refused") from None
    except smtplib.SMTPHeloError as exc:
        raise _helo_error(exc.smtp_code, exc.smtp_error, where, helo) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(retryable=True, reason=f"the mail server {where} refused the login ({exc.smtp_code} "
                                               f"{_reply_text(exc.smtp_error)}); {_login_hint(settings)}",
                        channel_problem="auth") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(retryable=False, reason=f"the mail server {where} cannot do what the channel needs: "
                                                f"{exc}; check smtp_security", channel_problem="config") from None
    except ssl.SSLError as exc:
        raise SendError(retryable=True, reason=f"TLS with the mail server {where} failed: {exc}",
                        channel_problem="tls") from None
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error, f"the mail server {where} answered") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendError(retryable=True, reason=f"cannot reach the mail server {where}: "
                                               f"{str(exc) or type(exc).__name__}") from None
    return SendResult()


def send_blocking(channel: ChannelConfig, message: OutboundMessage, guard: OutboundGuard = STRICT) -> SendResult:
    """Build and send one reply; SendError says whether trying again can help."""
    try:
        settings = EmailSettings.model_validate(channel.settings)
    except ValueError as exc:
        raise SendError(retryable=False, reason=f"the channel's settings are invalid: {exc}") from exc
    msg, msg_id = build_message(settings, message)
    helo = helo_name(settings, channel.webhook_url)  # the webhook URL starts with the public base URL
    settings = settings.model_copy(update={"smtp_helo_name": helo})
    recipient = msg["To"].addresses[0].addr_spec
    smtputf8 = not (settings.address.isascii() and recipient.isascii())
    data = msg.as_bytes(policy=SMTPUTF8 if smtputf8 else SMTP)
    where = f"{settings.smtp_host}:{settings.smtp_port_or_default}"
    try:
        _deliver(settings, channel.credentials, settings.address, recipient, data, smtputf8, guard)
    except OutboundRefused as exc:
        raise SendError(retryable=False, reason=f"smtp_host: {exc.reason}", channel_problem="refused") from None
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()), (550, b"refused"))
        if _helo_refused(reply):  # Postfix refuses a bad HELO name only at RCPT (smtpd_delay_reject)
            raise _helo_error(code, reply, where, helo) from None
        raise _refusal(code, reply, f"the mail server {where} refused the address {recipient}") from None
    except (smtplib.SMTPHeloError, smtplib.SMTPSenderRefused) as exc:
        if isinstance(exc, smtplib.SMTPHeloError) or _helo_refused(exc.smtp_error):
            raise _helo_error(exc.smtp_code, exc.smtp_error, where, helo) from None
        raise _refusal(exc.smtp_code, exc.smtp_error, f"the mail server {where} refused the sender "
                                                      f"{settings.address}") from None
    except smtplib.SMTPAuthenticationError as exc:
        # The channel's login is wrong, not the message: keep retrying while an administrator fixes it.
        raise SendError(retryable=True, reason=f"the mail server {where} refused the login "
                                               f"({exc.smtp_code} {_reply_text(exc.smtp_error)}); "
                                               f"{_login_hint(settings)}", channel_problem="auth") from None
    except smtplib.SMTPResponseException as exc:
        raise _refusal(exc.smtp_code, exc.smtp_error, f"the mail server {where} answered") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(retryable=False, reason=f"the mail server {where} cannot do what the channel needs: "
                                                f"{exc}; check smtp_security", channel_problem="config") from None
    except ssl.SSLError as exc:
        raise SendError(retryable=True, reason=f"TLS with the mail server {where} failed: {exc}",
                        channel_problem="tls") from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        raise SendError(retryable=True, reason=f"cannot reach the mail server {where}: {detail}") from None
    return SendResult(provider_message_id=msg_id)


async def send(channel: ChannelConfig, message: OutboundMessage, guard: OutboundGuard = STRICT) -> SendResult:
    """``send_blocking`` in a thread: smtplib blocks."""
    return await asyncio.to_thread(send_blocking, channel, message, guard)
