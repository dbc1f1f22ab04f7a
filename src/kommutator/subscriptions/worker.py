"""Sends the deliveries owed: signed, through the outbound guard, one subject's events in order, retried with
the outbox's policy for more than a day, then the subscription is turned off and administrators are told."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from kommutator.clock import now
from kommutator.common import webhook_signing as signing
from kommutator.db import Tx
from kommutator.subscriptions import payloads
from kommutator.subscriptions.actions import Outcome, do_record_outcomes, do_release_expired, secret_of
from kommutator.subscriptions.journal import journal_of
from kommutator.subscriptions.models import Delivery, Subscription
from kommutator.workers.base import PollingWorker
from kommutator.workers.outbox import RetryPolicy

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)

# 5 s, 25 s, 2 min, 10 min, 52 min, 4.3 h, then every 8 h: the tenth attempt comes about 29 h after the first.
POLICY = RetryPolicy(max_attempts=10)
LEASE = dt.timedelta(seconds=120)
BATCH = 50
PARALLEL = 8
TIMEOUT = 10.0


@dataclass(frozen=True)
class _Work:
    delivery_id: int
    event_id: str
    event_type: str
    event: dict[str, Any]
    occurred_at: dt.datetime
    attempts: int
    url: str
    secret: str


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


async def post(client: httpx.AsyncClient, url: str, secret: str, event_id: str,
               body: bytes) -> tuple[bool, int | None, str, int, str, float | None]:
    """One attempt: (ok, status code, error, duration in ms, response excerpt, the receiver's Retry-After)."""
    started = time.monotonic()
    try:
        response = await client.post(url, content=body,
                                     headers=signing.headers(secret, event_id, int(time.time()), body))
    except Exception as exc:  # refused by the guard, no route, timeout, TLS: all are the receiver's side
        ms = int((time.monotonic() - started) * 1000)
        return False, None, f"{type(exc).__name__}: {exc}"[:500], ms, "", None
    ms = int((time.monotonic() - started) * 1000)
    excerpt = response.text[:500]
    if 200 <= response.status_code < 300:
        return True, response.status_code, "", ms, excerpt, None
    return False, response.status_code, f"HTTP {response.status_code}", ms, excerpt, _retry_after(response)


class SubscriptionWorker(PollingWorker):
    name_in_logs = "subscriptions"

    def __init__(self, runtime: Runtime, *, client: httpx.AsyncClient | None = None,
                 interval: float = 1.0) -> None:
        super().__init__()
        self.rt = runtime
        self.interval = interval
        self._client = client

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            from kommutator.net.http import outbound_client

            self._client = outbound_client(self.rt.settings, timeout=TIMEOUT)
        return self._client

    async def run_due(self, *, max_rounds: int = 20) -> int:
        journal = journal_of(self.rt)
        if journal.stale():
            await journal.reload(self.rt)
        if not journal.subscriptions:  # none enabled: nothing can be claimed (no idle write each second)
            return 0
        sent = 0
        for _ in range(max_rounds):
            work = await self.claim()
            if not work:
                break
            outcomes = await self._send_all(work)
            turned_off = await self.rt.db.write(partial(do_record_outcomes, outcomes=outcomes))
            if turned_off:
                await journal.reload(self.rt)
            sent += len(work)
        return sent

    async def claim(self) -> list[_Work]:
        ts = now()
        older = aliased(Delivery)
        heads = (select(Delivery.id)
                 .join(Subscription, Subscription.id == Delivery.subscription_id)
                 .where(Delivery.status == "pending", Delivery.next_attempt_at <= ts, Subscription.enabled.is_(True),
                        ~exists().where(and_(older.subscription_id == Delivery.subscription_id,
                                             older.order_key == Delivery.order_key, older.id < Delivery.id,
                                             older.status.in_(("pending", "sending")))))
                 .order_by(Delivery.id).limit(BATCH))

        async def job(tx: Tx) -> list[int]:
            await do_release_expired(tx)
            ids = list((await tx.session.execute(heads)).scalars())
            if not ids:
                return []
            result = await tx.session.execute(update(Delivery).where(Delivery.id.in_(ids),
                                                                     Delivery.status == "pending")
                                              .values(status="sending", claimed_until=ts + LEASE)
                                              .returning(Delivery.id))
            return list(result.scalars())

        ids = await self.rt.db.write(job)
        if not ids:
            return []
        async with self.rt.db.read() as s:
            rows = (await s.execute(select(Delivery, Subscription).join(Subscription)
                                    .where(Delivery.id.in_(ids)).order_by(Delivery.id))).all()
        return [_Work(d.id, d.event_id, d.event_type, dict(d.event or {}), d.occurred_at, d.attempts, sub.url,
                      secret_of(self.rt.box, sub)) for d, sub in rows]

    async def _send_all(self, work: list[_Work]) -> list[Outcome]:
        sem = asyncio.Semaphore(PARALLEL)

        async def one(w: _Work) -> Outcome:
            async with sem:
                return await self._send(w)

        return list(await asyncio.gather(*(one(w) for w in work)))

    async def _send(self, w: _Work) -> Outcome:
        async with self.rt.db.read() as s:
            body = encode(await payloads.body(s, w.event_type, w.event, w.occurred_at))
        ok, code, error, ms, excerpt, retry_after = await post(self.client, w.url, w.secret, w.event_id, body)
        attempt = w.attempts + 1
        retry = None if ok or attempt >= POLICY.max_attempts else POLICY.delay(attempt, retry_after)
        if not ok:
            log.info("subscription delivery %s to %s failed (%s), attempt %s", w.delivery_id, w.url, error, attempt)
        return Outcome(w.delivery_id, ok, code, error, ms, excerpt, retry)

    async def stop(self) -> None:
        await super().stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def subscription_worker_of(rt: Runtime) -> SubscriptionWorker:
    if rt.subscription_worker is None:
        journal_of(rt)
        rt.subscription_worker = SubscriptionWorker(rt)
    return rt.subscription_worker
