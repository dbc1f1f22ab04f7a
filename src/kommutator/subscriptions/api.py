"""/api/v1/subscriptions: event subscriptions for CRMs and other integrations (administrators)."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, select

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.clock import now
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.errors import not_found
from kommutator.net.http import guard_of
from kommutator.runtime import Runtime
from kommutator.subscriptions import actions, payloads
from kommutator.subscriptions.catalogue import TEST_TYPE, TYPES
from kommutator.subscriptions.journal import journal_of
from kommutator.subscriptions.models import Delivery, DeliveryAttempt, Subscription
from kommutator.subscriptions.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryList,
    DeliveryRead,
    EventTypeRead,
    SecretRead,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    SubscriptionUpdate,
    TestResult,
)
from kommutator.subscriptions.worker import encode, post, subscription_worker_of

router = APIRouter(tags=["subscriptions"], route_class=SafeRoute)


async def _read(rt: Runtime, sub: Subscription) -> SubscriptionRead:
    async with rt.db.read() as s:
        counts = dict((await s.execute(select(Delivery.status, func.count()).where(
            Delivery.subscription_id == sub.id, Delivery.status.in_(("pending", "sending", "failed")))
            .group_by(Delivery.status))).all())
    return SubscriptionRead.model_validate(sub).model_copy(update={
        "pending": counts.get("pending", 0) + counts.get("sending", 0), "failed": counts.get("failed", 0)})


@router.get("/subscriptions/event-types", response_model=list[EventTypeRead])
async def list_event_types(principal: CurrentPrincipal) -> list[EventTypeRead]:
    """The events a subscription may ask for."""
    principal.require_admin()
    return [EventTypeRead(type=t, description=en, description_ru=ru) for t, (en, ru) in TYPES.items()]


@router.get("/subscriptions", response_model=list[SubscriptionRead])
async def list_subscriptions(rt: RuntimeDep, principal: CurrentPrincipal) -> list[SubscriptionRead]:
    principal.require_admin()
    async with rt.db.read() as s:
        subs = (await s.execute(select(Subscription).order_by(Subscription.id))).scalars().all()
    return [await _read(rt, sub) for sub in subs]


@router.post("/subscriptions", response_model=SubscriptionCreated, status_code=201)
async def create_subscription(rt: RuntimeDep, principal: CurrentPrincipal,
                              body: SubscriptionCreate) -> SubscriptionCreated:
    """Subscribe a URL to events; the answer carries the signing secret, shown this once."""
    principal.require_admin()
    await actions.check_url(guard_of(subscription_worker_of(rt).client), str(body.url))
    sub, secret = await rt.db.write(lambda tx: actions.do_create_subscription(tx, principal, body, rt.box))
    await journal_of(rt).reload(rt)
    read = await _read(rt, sub)
    return SubscriptionCreated(**read.model_dump(), secret=secret)


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
async def get_subscription(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id) -> SubscriptionRead:
    principal.require_admin()
    async with rt.db.read() as s:
        sub = await s.get(Subscription, subscription_id)
    if sub is None:
        raise not_found("subscription", subscription_id)
    return await _read(rt, sub)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
async def update_subscription(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id,
                              body: SubscriptionUpdate) -> SubscriptionRead:
    """Change the URL, the events, or turn it off and on (on again: the events still owed are sent)."""
    principal.require_admin()
    if body.url is not None:
        await actions.check_url(guard_of(subscription_worker_of(rt).client), str(body.url))
    sub = await rt.db.write(lambda tx: actions.do_update_subscription(tx, principal, subscription_id, body))
    await journal_of(rt).reload(rt)
    return await _read(rt, sub)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id) -> Response:
    """Remove it with its delivery log; nothing more is sent."""
    principal.require_admin()
    await rt.db.write(lambda tx: actions.do_delete_subscription(tx, principal, subscription_id))
    await journal_of(rt).reload(rt)
    return Response(status_code=204)


@router.post("/subscriptions/{subscription_id}/rotate-secret", response_model=SecretRead)
async def rotate_secret(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id) -> SecretRead:
    """A new signing secret (the old one stops at once); shown this once."""
    principal.require_admin()
    secret = await rt.db.write(lambda tx: actions.do_rotate_secret(tx, principal, subscription_id, rt.box))
    return SecretRead(secret=secret)


@router.post("/subscriptions/{subscription_id}/test", response_model=TestResult)
async def send_test(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id) -> TestResult:
    """Send a signed ``subscription.test`` event now and say what the receiver answered (not retried)."""
    principal.require_admin()
    async with rt.db.read() as s:
        sub = await s.get(Subscription, subscription_id)
    if sub is None:
        raise not_found("subscription", subscription_id)
    body = encode({"type": TEST_TYPE, "timestamp": now().isoformat().replace("+00:00", "Z"),
                   "data": {"subscription_id": sub.id, "name": sub.name}})
    ok, code, error, ms, _excerpt, _ra = await post(subscription_worker_of(rt).client, sub.url,
                                                    actions.secret_of(rt.box, sub), f"msg_{uuid.uuid4().hex}", body)
    return TestResult(ok=ok, status_code=code, error=error, duration_ms=ms)


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id,
                          status: Literal["pending", "sending", "delivered", "failed"] | None = None,
                          before_id: int | None = Query(None, ge=1, le=MAX_ID),
                          limit: int = Query(50, ge=1, le=200)) -> DeliveryList:
    """The delivery log, newest first."""
    principal.require_admin()
    stmt = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    if before_id:
        stmt = stmt.where(Delivery.id < before_id)
    async with rt.db.read() as s:
        if await s.get(Subscription, subscription_id) is None:
            raise not_found("subscription", subscription_id)
        rows = (await s.execute(stmt.order_by(Delivery.id.desc()).limit(limit + 1))).scalars().all()
    more = len(rows) > limit
    items = [DeliveryRead.model_validate(d) for d in rows[:limit]]
    return DeliveryList(items=items, next_before_id=items[-1].id if more and items else None)


@router.get("/subscriptions/{subscription_id}/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id,
                       delivery_id: Id) -> DeliveryDetail:
    """One delivery: what it sends and every attempt's answer."""
    principal.require_admin()
    async with rt.db.read() as s:
        d = await s.get(Delivery, delivery_id)
        if d is None or d.subscription_id != subscription_id:
            raise not_found("delivery", delivery_id)
        attempts = (await s.execute(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id)
                                    .order_by(DeliveryAttempt.id))).scalars().all()
        body = await payloads.body(s, d.event_type, dict(d.event or {}), d.occurred_at)
    return DeliveryDetail(**DeliveryRead.model_validate(d).model_dump(), body=body,
                          attempt_log=[AttemptRead.model_validate(a) for a in attempts])


@router.post("/subscriptions/{subscription_id}/deliveries/{delivery_id}/replay", response_model=DeliveryRead)
async def replay_delivery(rt: RuntimeDep, principal: CurrentPrincipal, subscription_id: Id,
                          delivery_id: Id) -> DeliveryRead:
    """Send a delivered or given-up delivery again, with the same webhook-id."""
    principal.require_admin()
    d = await rt.db.write(lambda tx: actions.do_replay(tx, principal, subscription_id, delivery_id))
    return DeliveryRead.model_validate(d)
