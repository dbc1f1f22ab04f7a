"""Send alerts outside the workspace through their destinations (plug-ins: ``quality/destinations/``).

Each delivery is an ``alert_deliveries`` row naming its destination (``channel``) and target: claimed for a
while, sent outside any transaction by the destination, then marked sent or scheduled again by the outbox's
retry policy (``workers/retry.py``: backoff with jitter, a provider's Retry-After kept, the same number of
attempts). A crash after sending and before marking lets the claim expire and sends again: at least once,
never lost (a webhook carries the same ``webhook-id`` each time, so its receiver can drop the repeat).
"""

from __future__ import annotations

import datetime as dt
import logging

import httpx
from sqlalchemy import or_, select, update

from kommutator.clock import now
from kommutator.config import Settings
from kommutator.db import Tx
from kommutator.net.http import outbound_client
from kommutator.quality.destinations.base import AlertMessage, DeliveryError, SendContext, get
from kommutator.quality.models import AlertDelivery, AlertRule, QualityAlert
from kommutator.runtime import Runtime
from kommutator.workers.base import PollingWorker
from kommutator.workers.retry import RetryPolicy

log = logging.getLogger(__name__)

CLAIM = dt.timedelta(seconds=120)

__all__ = ["AlertDeliveryWorker", "DeliveryError", "conversation_link"]


def conversation_link(settings: Settings, conversation_id: int | None) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/#conversation/{conversation_id}" if conversation_id else base


class AlertDeliveryWorker(PollingWorker):
    name_in_logs = "alert-deliveries"

    def __init__(self, rt: Runtime, *, client: httpx.AsyncClient | None = None, interval: float = 2.0,
                 policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.rt = rt
        self.interval = interval
        self.policy = policy or RetryPolicy()
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
        destination = get(d.channel)
        try:
            if destination is None:
                raise DeliveryError(f"no alert destination named {d.channel!r} is registered", retryable=False)
            ctx = SendContext(settings=self.rt.settings, client=self.client, box=self.rt.box, rule=rule)
            await destination.send(ctx, d.target, self.message(alert, d))
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
            elif not error.retryable or row.attempts >= self.policy.max_attempts:
                row.status, row.last_error = "failed", error.reason
            else:
                row.last_error = error.reason
                row.next_attempt_at = now() + dt.timedelta(seconds=self.policy.delay(row.attempts,
                                                                                      error.retry_after))

        await self.rt.db.write(record)

    def message(self, alert: QualityAlert, d: AlertDelivery) -> AlertMessage:
        """The alert as this delivery carries it: in the language the delivery names, else both."""
        language = d.language or None
        texts = (alert.data or {}).get("texts") or {}
        title, body = alert.title, alert.body
        if language in ("en", "ru") and isinstance(texts.get(language), dict):
            title = str(texts[language].get("title") or title)
            body = str(texts[language].get("body") or title)
        return AlertMessage(alert_id=alert.id, delivery_id=d.id, kind=alert.kind, severity=alert.severity,
                            title=title, body=body, link=conversation_link(self.rt.settings, alert.conversation_id),
                            conversation_id=alert.conversation_id, created_at=alert.created_at, language=language)
