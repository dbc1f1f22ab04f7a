"""/api/v1/queues and /api/v1/routing: queues with their rules and live figures; routing strategies."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.clock import now
from kommutator.common import hours
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.conversations.models import Conversation
from kommutator.errors import not_found
from kommutator.queues.actions import do_create_queue, do_delete_queue, do_update_queue
from kommutator.queues.models import Queue
from kommutator.queues.schemas import QueueCreate, QueueRead, QueueUpdate, StrategyRead
from kommutator.routing import strategies
from kommutator.runtime import Runtime

router = APIRouter(tags=["queues"], route_class=SafeRoute)


async def _read(rt: Runtime, queues: list[Queue]) -> list[QueueRead]:
    at = now()
    waiting: dict[int, tuple[int, float]] = defaultdict(lambda: (0, 0.0))
    async with rt.db.read() as s:
        for qid, count, oldest in (await s.execute(
                select(Conversation.queue_id, func.count(), func.min(Conversation.queued_at))
                .where(Conversation.status == "queued", Conversation.assignee_id.is_(None),
                       Conversation.queue_id.in_([q.id for q in queues]))
                .group_by(Conversation.queue_id))).all():
            if qid is not None:
                waiting[qid] = (count, (at - oldest).total_seconds() if oldest else 0.0)
    return [QueueRead.model_validate(q).model_copy(update={
        "waiting": waiting[q.id][0], "longest_wait_seconds": round(waiting[q.id][1], 1),
        "open_now": hours.is_open(q.business_hours, at)}) for q in queues]


@router.get("/routing/strategies", response_model=list[StrategyRead])
async def list_strategies(principal: CurrentPrincipal) -> list[StrategyRead]:
    """The routing strategies a queue can use (one file each under routing/strategies/)."""
    return [StrategyRead(name=n, title=strategies.get(n).title) for n in strategies.names()]


@router.get("/queues", response_model=list[QueueRead])
async def list_queues(rt: RuntimeDep, principal: CurrentPrincipal) -> list[QueueRead]:
    """Every queue with its rules, how many conversations wait in it and the longest wait now."""
    async with rt.db.read() as s:
        rows = list((await s.execute(select(Queue).order_by(Queue.priority.desc(), Queue.id))).scalars())
    return await _read(rt, rows)


@router.post("/queues", response_model=QueueRead, status_code=201)
async def create_queue(rt: RuntimeDep, principal: CurrentPrincipal, body: QueueCreate) -> QueueRead:
    principal.require_admin()
    queue = await rt.db.write(lambda tx: do_create_queue(tx, principal, body))
    return (await _read(rt, [queue]))[0]


@router.get("/queues/{queue_id}", response_model=QueueRead)
async def get_queue(rt: RuntimeDep, principal: CurrentPrincipal, queue_id: Id) -> QueueRead:
    async with rt.db.read() as s:
        queue = await s.get(Queue, queue_id)
    if queue is None:
        raise not_found("queue", queue_id)
    return (await _read(rt, [queue]))[0]


@router.patch("/queues/{queue_id}", response_model=QueueRead)
async def update_queue(rt: RuntimeDep, principal: CurrentPrincipal, queue_id: Id, body: QueueUpdate) -> QueueRead:
    principal.require_admin()
    queue = await rt.db.write(lambda tx: do_update_queue(tx, principal, queue_id, body))
    return (await _read(rt, [queue]))[0]


@router.delete("/queues/{queue_id}", status_code=204)
async def delete_queue(rt: RuntimeDep, principal: CurrentPrincipal, queue_id: Id) -> Response:
    """Remove a queue; its waiting conversations stay waiting, without the queue's rules."""
    principal.require_admin()
    await rt.db.write(lambda tx: do_delete_queue(tx, principal, queue_id))
    return Response(status_code=204)
