"""Helpers shared by the quality tests: customers writing, agents replying, the monitor and timers running."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from sqlalchemy import select

from kommutator.quality.models import QualityAlert, SlaClock
from kommutator.quality.monitor import monitor_of
from kommutator.runtime import Runtime
from kommutator.workers.timers import TimerWorker

from .conftest import Actor, post_inbound

CONV = "/api/v1/conversations"
Q = "/api/v1/quality"
_ids = itertools.count(1)


async def customer_writes(client: httpx.AsyncClient, channel: dict[str, Any], contact: str, text: str = "hello",
                          **extra: Any) -> int:
    r = await post_inbound(client, channel, msg_id=f"q-{next(_ids)}", contact=contact, text=text, **extra)
    assert r.status_code == 200, r.text
    return int(r.json()["conversation_id"])


async def reply(client: httpx.AsyncClient, actor: Actor, cid: int, text: str = "Hello! How can I help?",
                **body: Any) -> dict[str, Any]:
    r = await client.post(f"{CONV}/{cid}/messages", json={"text": text, **body}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def set_status(client: httpx.AsyncClient, actor: Actor, cid: int, to: str) -> None:
    r = await client.post(f"{CONV}/{cid}/status", json={"status": to}, headers=actor.headers)
    assert r.status_code == 200, r.text


async def settle(rt: Runtime) -> int:
    """Let the monitor catch up, then fire due timers (and let it catch up with what they changed)."""
    monitor = monitor_of(rt)
    await monitor.drain()
    fired = await TimerWorker(rt.db).run_due()
    await monitor.drain()
    return fired


async def clocks(rt: Runtime, cid: int) -> dict[str, SlaClock]:
    async with rt.db.read() as s:
        rows = (await s.execute(select(SlaClock).where(SlaClock.conversation_id == cid)
                                .order_by(SlaClock.id))).scalars().all()
    return {f"{c.target}:{c.seq}" if c.target == "next_response" else c.target: c for c in rows}


async def alerts(rt: Runtime, kind: str | None = None) -> list[QualityAlert]:
    async with rt.db.read() as s:
        stmt = select(QualityAlert).order_by(QualityAlert.id)
        if kind:
            stmt = stmt.where(QualityAlert.kind == kind)
        return list((await s.execute(stmt)).scalars())


async def policy(client: httpx.AsyncClient, actor: Actor, **body: Any) -> dict[str, Any]:
    r = await client.post(f"{Q}/policies", json={"name": f"policy {next(_ids)}", **body}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())
