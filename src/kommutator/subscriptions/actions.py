"""Changes to subscriptions and their deliveries (administrators), and the worker's record of each attempt."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select, update

from kommutator.agents.models import User
from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.common import webhook_signing as signing
from kommutator.crypto import SecretBox
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.net.guard import OutboundGuard, refusal_at_save
from kommutator.notifications.actions import do_notify
from kommutator.subscriptions.models import Delivery, DeliveryAttempt, Subscription
from kommutator.subscriptions.schemas import SubscriptionCreate, SubscriptionUpdate
from kommutator.subscriptions.texts import text


async def check_url(guard: OutboundGuard, url: str) -> None:
    """422 when the receiver is a loopback, private or other special address the allow-list does not name."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    refused = await refusal_at_save(guard, parts.hostname or "", port)
    if refused is not None:
        raise ProblemError(422, "outbound_target_refused", f"url: {refused.reason}")


def secret_of(box: SecretBox, sub: Subscription) -> str:
    return str(box.decrypt(sub.secret_encrypted)["secret"])


async def do_create_subscription(tx: Tx, principal: Principal, data: SubscriptionCreate, box: SecretBox, *,
                                 secret: str | None = None) -> tuple[Subscription, str]:
    """``secret``: a given signing secret (the demo's); by default a new one."""
    principal.require_admin()
    secret = secret or signing.new_secret()
    ts = now()
    sub = Subscription(name=data.name, url=str(data.url), event_types=data.event_types, enabled=data.enabled,
                       secret_encrypted=box.encrypt({"secret": secret}), disabled_reason="",
                       created_by_id=principal.user_id, created_at=ts, updated_at=ts)
    tx.session.add(sub)
    await tx.session.flush()
    do_audit(tx, principal, "subscription.create", "subscription", sub.id,
             url=sub.url, event_types=sub.event_types)
    return sub, secret


async def get_subscription(tx: Tx, subscription_id: int) -> Subscription:
    sub = await tx.session.get(Subscription, subscription_id)
    if sub is None:
        raise not_found("subscription", subscription_id)
    return sub


async def do_update_subscription(tx: Tx, principal: Principal, subscription_id: int,
                                 data: SubscriptionUpdate) -> Subscription:
    principal.require_admin()
    sub = await get_subscription(tx, subscription_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in changes:
        changes["url"] = str(data.url)
    if changes.get("enabled") and not sub.enabled:  # on again: start afresh with what is owed
        sub.disabled_reason, sub.failing_since = "", None
    for key, value in changes.items():
        setattr(sub, key, value)
    if changes.get("enabled") is False:
        sub.disabled_reason = ""
    sub.updated_at = now()
    do_audit(tx, principal, "subscription.update", "subscription", sub.id, **{k: str(v) for k, v in changes.items()})
    return sub


async def do_delete_subscription(tx: Tx, principal: Principal, subscription_id: int) -> None:
    principal.require_admin()
    sub = await get_subscription(tx, subscription_id)
    await tx.session.delete(sub)
    do_audit(tx, principal, "subscription.delete", "subscription", subscription_id, url=sub.url)


async def do_rotate_secret(tx: Tx, principal: Principal, subscription_id: int, box: SecretBox) -> str:
    principal.require_admin()
    sub = await get_subscription(tx, subscription_id)
    secret = signing.new_secret()
    sub.secret_encrypted = box.encrypt({"secret": secret})
    sub.updated_at = now()
    do_audit(tx, principal, "subscription.rotate_secret", "subscription", sub.id)
    return secret


async def do_replay(tx: Tx, principal: Principal, subscription_id: int, delivery_id: int) -> Delivery:
    """Send a delivery again (delivered or given up): with the same webhook-id, so receivers that already
    have it can tell; it goes before later events of its subject that are still owed."""
    principal.require_admin()
    d = await tx.session.get(Delivery, delivery_id)
    if d is None or d.subscription_id != subscription_id:
        raise not_found("delivery", delivery_id)
    if d.status in ("pending", "sending"):
        raise ProblemError(409, "delivery_pending", "This delivery is still being sent; wait for its outcome.")
    d.status, d.attempts, d.next_attempt_at, d.claimed_until = "pending", 0, now(), None
    do_audit(tx, principal, "subscription.replay", "subscription", subscription_id, delivery_id=delivery_id)
    return d


# --- The worker's records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    ok: bool
    status_code: int | None
    error: str
    duration_ms: int
    excerpt: str
    retry_in: float | None  # seconds until the next try; None: give up


async def do_record_outcomes(tx: Tx, outcomes: list[Outcome]) -> list[int]:
    """Write each attempt; returns the subscriptions turned off because a delivery ran out of retries."""
    ts = now()
    turned_off: list[int] = []
    for o in outcomes:
        d = await tx.session.get(Delivery, o.delivery_id)
        if d is None or d.status != "sending":
            continue  # deleted with its subscription meanwhile, or its lease ran out and another took it
        tx.session.add(DeliveryAttempt(delivery_id=d.id, at=ts, status_code=o.status_code, error=o.error[:2000],
                                       duration_ms=o.duration_ms, response_excerpt=o.excerpt[:500]))
        d.attempts += 1
        d.last_status_code, d.last_error, d.claimed_until = o.status_code, o.error[:2000], None
        sub = await tx.session.get(Subscription, d.subscription_id)
        if o.ok:
            d.status, d.delivered_at = "delivered", ts
            if sub is not None:
                sub.last_success_at, sub.failing_since = ts, None
            continue
        if sub is not None and sub.failing_since is None:
            sub.failing_since = ts
        if o.retry_in is not None:
            d.status, d.next_attempt_at = "pending", ts + dt.timedelta(seconds=o.retry_in)
            continue
        d.status = "failed"
        if sub is not None and sub.enabled:
            sub.enabled, sub.disabled_reason, sub.updated_at = False, "failing", ts
            turned_off.append(sub.id)
            await _tell_admins(tx, sub, d)
    return turned_off


async def _tell_admins(tx: Tx, sub: Subscription, d: Delivery) -> None:
    admins = (await tx.session.execute(select(User.id, User.locale)
                                       .where(User.role == "admin", User.active.is_(True)))).all()
    since = (sub.failing_since or now()).strftime("%Y-%m-%d %H:%M UTC")
    by_language: dict[str, list[int]] = {}
    for uid, locale in admins:
        by_language.setdefault("ru" if (locale or "").startswith("ru") else "en", []).append(uid)
    for language, ids in by_language.items():
        values = {"name": sub.name, "url": sub.url, "since": since, "attempts": d.attempts,
                  "error": d.last_error or f"HTTP {d.last_status_code}"}
        await do_notify(tx, user_ids=ids, kind="subscription.disabled", severity="critical",
                        title=text(language, "disabled.title", **values),
                        body=text(language, "disabled.body", **values), data={"subscription_id": sub.id})


async def do_release_expired(tx: Tx) -> int:
    """Deliveries whose sender died mid-send (lease over) are owed again."""
    result = await tx.session.execute(update(Delivery).where(Delivery.status == "sending",
                                                             Delivery.claimed_until < now())
                                      .values(status="pending", claimed_until=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
