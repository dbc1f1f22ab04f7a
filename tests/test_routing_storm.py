"""P7, the assignment storm: three server processes share one PostgreSQL database and route hundreds of
conversations while agents come and go and conversations are resolved. A sampler in this process reads the
floor many times a second; no sample may show an agent over capacity, and no conversation may be assigned
by routing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from kommutator.agents.models import User
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Transition
from kommutator.db import Tx
from kommutator.queues.models import Queue
from kommutator.runtime import Runtime

from .conftest import PG_URL, Factory
from .storm_worker import MIN_ASSIGNMENTS, storm

pytestmark = pytest.mark.skipif(not PG_URL, reason="several server processes share a database only on PostgreSQL")

AGENTS, CONVERSATIONS, PROCESSES, SECONDS = 30, 400, 3, 10.0


async def _seed(runtime: Runtime, factory: Factory) -> dict[int, int]:
    capacities = {}
    for i in range(AGENTS):
        agent = await factory.user("agent", name=f"Agent {i}")
        capacities[agent.id] = 1 + i % 3

    async def job(tx: Tx) -> None:
        queue = Queue(name="Storm", strategy="least_busy", accept_timeout_seconds=0, wait_notice_seconds=0)
        tx.session.add(queue)
        for uid, cap in capacities.items():
            user = await tx.session.get(User, uid)
            assert user is not None
            user.capacity, user.presence = cap, "online"
        await tx.session.flush()
        ts = now()
        for i in range(CONVERSATIONS):
            contact = Contact(name=f"Customer {i}", created_at=ts, updated_at=ts)
            tx.session.add(contact)
            await tx.session.flush()
            tx.session.add(Conversation(contact_id=contact.id, status="queued", queue_id=queue.id,
                                        queued_at=ts + dt.timedelta(microseconds=i), created_at=ts, updated_at=ts,
                                        last_message_at=ts))

    await runtime.db.write(job)
    return capacities


async def _sample(runtime: Runtime, capacities: dict[int, int]) -> list[dict[int, float]]:
    """Loads now, each agent's sum of routing weights of the conversations assigned to them."""
    async with runtime.db.read() as s:
        rows = (await s.execute(select(Conversation.assignee_id, func.sum(Conversation.routing_weight))
                                .where(Conversation.status == "assigned").group_by(Conversation.assignee_id))).all()
    return [{uid: float(load) for uid, load in rows if uid is not None and load > capacities[uid]}]


async def test_no_agent_over_capacity_and_no_double_assignment_across_processes(
        runtime: Runtime, factory: Factory, tmp_path: Any) -> None:
    capacities = await _seed(runtime, factory)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=storm, args=(runtime.settings.database_url, str(tmp_path / f"p{i}"), SECONDS, i,
                                                PROCESSES, out))
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    violations: list[dict[int, float]] = []
    samples = 0
    while any(p.is_alive() for p in procs):
        for over in await _sample(runtime, capacities):
            if over:
                violations.append(over)
        samples += 1
        await asyncio.sleep(0.01)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    counts = [out.get(timeout=5) for _ in procs]
    assert not violations, f"agents over capacity in {len(violations)} of {samples} samples: {violations[:3]}"
    async with runtime.db.read() as s:
        routed = Counter((await s.execute(
            select(Transition.conversation_id).where(Transition.to_status == "assigned",
                                                     Transition.actor_user_id.is_(None)))).scalars())
        final = (await s.execute(select(Conversation.status, func.count()).group_by(Conversation.status))).all()
    doubles = {c: n for c, n in routed.items() if n > 1}
    assert not doubles, f"conversations assigned by routing more than once: {doubles}"
    total_assigned = sum(c["assigned"] for c in counts)
    assert total_assigned == len(routed)  # every assignment a process reported is the only one of its conversation
    assert total_assigned >= MIN_ASSIGNMENTS, counts  # a real storm, not a trickle
    assert samples > 100
    assert sum(c["errors"] for c in counts) == 0, counts
    by_status = dict(final)
    assert by_status.get("queued", 0) + by_status.get("assigned", 0) + by_status.get("resolved", 0) == CONVERSATIONS
