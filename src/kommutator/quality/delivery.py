"""Send alerts by email (SMTP relay from the settings) and to Telegram chats (Bot API sendMessage).

Each delivery is an ``alert_deliveries`` row: claimed for a while, sent outside any transaction, then marked
sent or scheduled again with backoff. A crash after sending and before marking lets the claim expire and
sends again: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import smtplib
import ssl
from email.message import EmailMessage

import httpx
from sqlalchemy import or_, select, update

from kommutator.clock import now
from kommutator.common.jsonsafe import loads_json
from kommutator.config import Settings
from kommutator.db import Tx
from kommutator.net.guard import OutboundGuard, OutboundRefused
from kommutator.net.http import guard_of, outbound_client
from kommutator.net.mail import GuardedSMTP, GuardedSMTP_SSL, helo_name_for
from kommutator.quality.models import AlertDelivery, AlertRule, QualityAlert
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker

log = logging.getLogger(__name__)

CLAIM = dt.timedelta(seconds=120)
MAX_ATTEMPTS = 8
SMTP_TIMEOUT = 20.0


class DeliveryError(Exception):
    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.retryable = reason, retryable


def conversation_link(settings: Settings, conversation_id: int | None) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/#conversation/{conversation_id}" if conversation_id else base


def _send_mail(settings: Settings, guard: OutboundGuard, to: str, subject: str, body: str) -> None:
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


class AlertDeliveryWorker(PollingWorker):
    name_in_logs = "alert-deliveries"

    def __init__(self, rt: Runtime, *, client: httpx.AsyncClient | None = None, interval: float = 2.0) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = outbound_client(self.rt.settings)
        return self._client

    async def run_due(self) -> int:
        ts = now()

        async def claim(tx: Tx) -> list[int]:
            stmt = (select(AlertDelivery.id).where(
                AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= ts,
                or_(AlertDelivery.claimed_until.is_(None), AlertDelivery.claimed_until < ts))
                .order_by(AlertDelivery.id).limit(50))
            if tx.conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            ids = list((await tx.session.execute(stmt)).scalars())
            if ids:
                await tx.session.execute(update(AlertDelivery).where(AlertDelivery.id.in_(ids))
                                         .values(claimed_until=ts + CLAIM))
            return ids

        ids = await self.rt.db.write(claim)
        for delivery_id in ids:
            await self._deliver(delivery_id)
        return len(ids)

    async def _deliver(self, delivery_id: int) -> None:
        async with self.rt.db.read() as s:
            d = await s.get(AlertDelivery, delivery_id)
            alert = await s.get(QualityAlert, d.alert_id) if d else None
            rule = await s.get(AlertRule, d.rule_id) if d and d.rule_id else None
        if d is None or alert is None:
            return
        error: DeliveryError | None = None
        try:
            if d.channel == "email":
                await self._email(d.target, alert)
            else:
                await self._telegram(d.target, alert, rule)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # an unexpected failure must not stop the others; retried like a network one
            log.exception("alert delivery %s failed", delivery_id)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")

        async def record(tx: Tx) -> None:
            row = await tx.session.get(AlertDelivery, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.claimed_until = None
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now(), ""
            elif not error.retryable or row.attempts >= MAX_ATTEMPTS:
                row.status, row.last_error = "failed", error.reason
            else:
                row.last_error = error.reason
                row.next_attempt_at = now() + dt.timedelta(seconds=min(3600, 15 * 2 ** row.attempts))

        await self.rt.db.write(record)

    def _text(self, alert: QualityAlert) -> str:
        link = conversation_link(self.rt.settings, alert.conversation_id)
        return f"{alert.body or alert.title}\n\n{link}"

    async def _email(self, to: str, alert: QualityAlert) -> None:
        settings = self.rt.settings
        if not settings.alert_smtp_host:
            raise DeliveryError("alert emails are off: set alert_smtp_host in the configuration", retryable=False)
        try:
            await asyncio.to_thread(_send_mail, settings, guard_of(self.client), to, f"[Kommutator] {alert.title}",
                                    self._text(alert))
        except OutboundRefused as exc:
            raise DeliveryError(f"alert_smtp_host: {exc.reason}", retryable=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"the mail relay refused {to}: {exc.recipients}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"cannot send through {settings.alert_smtp_host}: {exc}") from None

    async def _telegram(self, chat_id: str, alert: QualityAlert, rule: AlertRule | None) -> None:
        if rule is None or not rule.telegram_token:
            raise DeliveryError("the alert rule has no Telegram bot token any more", retryable=False)
        token = str(self.rt.box.decrypt(rule.telegram_token).get("token", ""))
        url = f"{self.rt.settings.telegram_api_base_url.rstrip('/')}/bot{token}/sendMessage"
        try:
            r = await self.client.post(url, json={"chat_id": chat_id, "text": self._text(alert)[:4096],
                                                  "disable_web_page_preview": True})
        except OutboundRefused as exc:
            raise DeliveryError(f"telegram_api_base_url: {exc.reason}", retryable=False) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Telegram could not be reached: {type(exc).__name__}") from None
        if r.status_code == 200:
            return
        try:
            answer = loads_json(r.content)
            description = str(answer.get("description", "") if isinstance(answer, dict) else answer)
        except ValueError:
            description = r.text[:200]
        raise DeliveryError(f"Telegram answered {r.status_code}: {description}",
                            retryable=r.status_code == 429 or r.status_code >= 500)
