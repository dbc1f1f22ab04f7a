"""Alerts by email, through the SMTP relay of the configuration (``alert_smtp_*``) and the outbound guard."""

from __future__ import annotations

import asyncio
import email.utils
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage

from kommutator.clock import now
from kommutator.config import Settings
from kommutator.net.guard import OutboundGuard, OutboundRefused
from kommutator.net.http import guard_of
from kommutator.net.mail import GuardedSMTP, GuardedSMTP_SSL, helo_name_for
from kommutator.quality.destinations.base import AlertDestination, AlertMessage, DeliveryError, SendContext
from kommutator.quality.models import AlertRule

SMTP_TIMEOUT = 20.0


def send_mail(settings: Settings, guard: OutboundGuard, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.alert_email_from, to, subject
    msg["Date"] = email.utils.format_datetime(now())
    msg["Message-ID"] = email.utils.make_msgid(domain=settings.alert_email_from.rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, charset="utf-8", cte=None if body.isascii() else "base64")
    host, port = settings.alert_smtp_host, settings.alert_smtp_port
    # A relay may refuse the bare machine name (localhost): the configured name, else the public URL's host.
    helo = settings.alert_smtp_helo_name or helo_name_for(settings.public_base_url)
    client: smtplib.SMTP
    if settings.alert_smtp_security == "ssl":
        client = GuardedSMTP_SSL(guard, host, port, local_hostname=helo, timeout=SMTP_TIMEOUT,
                                 context=ssl.create_default_context())
    else:
        client = GuardedSMTP(guard, host, port, local_hostname=helo, timeout=SMTP_TIMEOUT)
    try:
        if settings.alert_smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.alert_smtp_username:
            client.login(settings.alert_smtp_username, settings.alert_smtp_password)
        client.send_message(msg)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


class EmailDestination(AlertDestination):
    name = "email"
    title = {"en": "Email", "ru": "Эл. почта"}

    def targets(self, rule: AlertRule | None, extra: Mapping[str, Sequence[str]]) -> list[str]:
        return list(dict.fromkeys([*(rule.emails if rule else []), *extra.get("email", ())]))

    async def send(self, ctx: SendContext, target: str, message: AlertMessage) -> None:
        settings = ctx.settings
        if not settings.alert_smtp_host:
            raise DeliveryError("alert emails are off: set alert_smtp_host in the configuration", retryable=False)
        try:
            await asyncio.to_thread(send_mail, settings, guard_of(ctx.client), target,
                                    f"[Kommutator] {message.title}", message.text)
        except OutboundRefused as exc:
            raise DeliveryError(f"alert_smtp_host: {exc.reason}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail relay refused {target}: {exc.recipients}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot send through {settings.alert_smtp_host}: {exc}") from None
