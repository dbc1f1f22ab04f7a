"""Property: after any sequence of customer messages, assignments, replies, resolutions, reopenings, ratings and
clock jumps — with the reporting worker's passes falling anywhere in between — the live facts and hourly rollups
equal a rebuild from raw history."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kommutator.app import create_app
from kommutator.bot.models import BotSession
from kommutator.clock import now, set_clock
from kommutator.config import load_settings
from kommutator.conversations.models import Message
from kommutator.db import Tx
from kommutator.events import IntentHeard
from kommutator.reports.actions import rebuild
from kommutator.reports.worker import ReportsWorker, reports_worker_of
from kommutator.runtime import Runtime

from .conftest import PG_URL, Clock, Factory, _truncate_all, post_inbound
from .quality_support import settle
from .test_reports_api import snapshot

CONTACTS = ("alice", "bob", "carol")
op = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(CONTACTS), st.sampled_from(["hello", "5", "2", "9"])),
    st.tuples(st.just("assign"), st.sampled_from(CONTACTS), st.integers(0, 1)),
    st.tuples(st.just("reply"), st.sampled_from(CONTACTS), st.integers(0, 1)),
    st.tuples(st.just("resolve"), st.sampled_from(CONTACTS), st.just(0)),
    st.tuples(st.just("reopen"), st.sampled_from(CONTACTS), st.just(0)),
    st.tuples(st.just("tick"), st.sampled_from([5, 40, 700, 3600, 86400 * 2]), st.just(0)),  # seconds
    st.tuples(st.just("drain"), st.just(""), st.just(0)),
    st.tuples(st.just("quality"), st.just(""), st.just(0)),
    # the bot recognised an intent in the contact's latest message and its session ended so (n: OUTCOMES index)
    st.tuples(st.just("heard"), st.sampled_from(CONTACTS), st.integers(0, 2)),
)
INTENTS = ("order_status", "refund", "talk_to_agent")
OUTCOMES = ("", "contained", "handed_off")


async def hear(rt: Runtime, cid: int, n: int) -> None:
    """What bot/apply.py records when the bot recognises an intent: the session's history and ``IntentHeard``."""

    async def job(tx: Tx) -> None:
        message_id = await tx.session.scalar(select(func.max(Message.id)).where(Message.conversation_id == cid))
        session = await tx.session.get(BotSession, cid)
        if session is None:
            session = BotSession(conversation_id=cid, flow_version=1, state={}, status="active")
            tx.session.add(session)
        at = now()
        session.state = {**session.state, "intents": [*session.state.get("intents", []),
                                                      [INTENTS[n], int(message_id or 0), at.isoformat()]]}
        session.outcome, session.updated_at = OUTCOMES[n], at
        tx.publish(IntentHeard(conversation_id=cid, team_id=None, assignee_id=None, intent=INTENTS[n],
                               message_id=int(message_id or 0)))

    await rt.db.write(job)


async def scenario(url: str, tmp: Path, ops: list[tuple[str, Any, int]]) -> None:
    clock = Clock()
    set_clock(clock)
    rt = Runtime.build(load_settings(data_dir=tmp / "data", database_url=url, secret_key="s" * 48,
                                     public_base_url="http://testserver"))
    await rt.db.start()
    try:
        app = create_app(runtime=rt)
        factory = Factory(rt)
        admin = await factory.user("admin")
        team = await factory.team("Support")
        agents = [await factory.user("agent", teams=[team]) for _ in range(2)]
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                                  headers=admin.headers)
            channel = r.json()
            await client.put("/api/v1/quality/csat/default", json={"scale": "csat", "ask_comment": False},
                             headers=admin.headers)
            conv: dict[str, int] = {}
            for i, (kind, who, n) in enumerate(ops):
                if kind == "write":
                    r = await post_inbound(client, channel, msg_id=f"m{i}", contact=who, text=n if isinstance(n, str)
                                           else "hello")
                    assert r.status_code == 200, r.text
                    conv[who] = r.json()["conversation_id"]
                elif kind == "tick":
                    clock.tick(who)
                elif kind == "drain":
                    await reports_worker_of(rt).drain()
                elif kind == "quality":
                    await settle(rt)
                elif who in conv:
                    cid = conv[who]
                    if kind == "heard":
                        await hear(rt, cid, n)
                    elif kind == "assign":
                        await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": agents[n].id},
                                          headers=admin.headers)
                    elif kind == "reply":
                        await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "ok"},
                                          headers=admin.headers)
                    elif kind in ("resolve", "reopen"):
                        await client.post(f"/api/v1/conversations/{cid}/status",
                                          json={"status": "resolved" if kind == "resolve" else "open"},
                                          headers=admin.headers)
            # What the worker's loop does: catch up with what no event announced, then a pass.
            worker = reports_worker_of(rt)
            await worker.catch_up()
            await worker.drain()
            live = await snapshot(rt)
            await rebuild(rt.db)
            rebuilt = await snapshot(rt)
            assert live == rebuilt, f"live facts/rollups differ from a rebuild after {ops}"
    finally:
        set_clock(None)
        await rt.db.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.just("write"), st.sampled_from(CONTACTS), st.just("hello")), min_size=1, max_size=1)
       .flatmap(lambda first: st.lists(op, min_size=3, max_size=25).map(lambda rest: first + rest)))
@example(ops=[  # a resolution counted in one hour, then reopened later: the first hour must lose it
    ("write", "alice", "hello"), ("assign", "alice", 0), ("reply", "alice", 0), ("tick", 3600, 0),
    ("resolve", "alice", 0), ("drain", "", 0), ("tick", 3600, 0), ("reopen", "alice", 0), ("drain", "", 0)])
@example(ops=[  # intents heard, the session's outcome changing later, a reopen in between
    ("write", "carol", "hello"), ("heard", "carol", 0), ("drain", "", 0), ("tick", 3600, 0), ("write", "carol", "2"),
    ("heard", "carol", 2), ("drain", "", 0), ("tick", 86400 * 2, 0), ("heard", "carol", 1)])
@example(ops=[  # a rating two days later
    ("write", "bob", "hello"), ("reply", "bob", 0), ("resolve", "bob", 0), ("quality", "", 0), ("drain", "", 0),
    ("tick", 86400 * 2, 0), ("write", "bob", "5"), ("quality", "", 0), ("drain", "", 0)])
def test_live_facts_and_rollups_equal_a_rebuild(database_template: str, ops: list[tuple[str, Any, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if PG_URL:
            asyncio.run(_truncate_all(database_template))
            url = database_template
        else:
            path = Path(tmp) / "k.db"
            shutil.copy(database_template, path)
            url = f"sqlite+aiosqlite:///{path}"
        asyncio.run(scenario(url, Path(tmp), ops))


async def two_writers(url: str, tmp: Path) -> None:
    """Two reporting workers in two runtimes (as in two processes) store the same conversations' facts at once, in
    small chunks whose hours overlap; the advisory lock makes them take turns, so the rollups equal a rebuild."""
    clock = Clock()
    set_clock(clock)
    runtimes = [Runtime.build(load_settings(data_dir=tmp / f"data{i}", database_url=url, secret_key="s" * 48,
                                            public_base_url="http://testserver")) for i in range(2)]
    for rt in runtimes:
        await rt.db.start()
    rt = runtimes[0]
    try:
        app = create_app(runtime=rt)
        factory = Factory(rt)
        admin = await factory.user("admin")
        team = await factory.team("Support")
        agent = await factory.user("agent", teams=[team])
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            r = await client.post("/api/v1/channels", json={"type": "api", "name": "CRM", "team_id": team},
                                  headers=admin.headers)
            channel = r.json()
            ids = []
            for i in range(24):
                r = await post_inbound(client, channel, msg_id=f"m{i}", contact=f"c{i}", text="hello")
                cid = r.json()["conversation_id"]
                ids.append(cid)
                if i % 2:
                    await client.post(f"/api/v1/conversations/{cid}/assign", json={"assignee_id": agent.id},
                                      headers=admin.headers)
                    clock.tick(40)
                    await client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "ok"},
                                      headers=admin.headers)
                if i % 3 == 0:
                    await hear(rt, cid, (i // 3) % 3)
                    await client.post(f"/api/v1/conversations/{cid}/status", json={"status": "resolved"},
                                      headers=admin.headers)
                clock.tick(600)
        writers = [ReportsWorker(one) for one in runtimes]
        for _round in range(3):  # the same conversations again: each pass replaces facts and re-rolls their hours
            for w in writers:
                w.chunk = 3
                for cid in ids if _round != 1 else reversed(ids):
                    w.note(cid)
            done = await asyncio.gather(*(w.drain() for w in writers))
            assert done == [len(ids), len(ids)]
        live = await snapshot(rt)
        assert live[0] and live[1]
        await rebuild(rt.db)
        assert live == await snapshot(rt), "two concurrent writers counted a change twice"
    finally:
        set_clock(None)
        for one in runtimes:
            await one.db.close()


@pytest.mark.skipif(not PG_URL, reason="concurrent writers are a PostgreSQL matter (SQLite has one writer)")
def test_two_concurrent_writers_keep_rollups_equal_to_a_rebuild(database_template: str, tmp_path: Path) -> None:
    asyncio.run(_truncate_all(database_template))
    asyncio.run(two_writers(database_template, tmp_path))
