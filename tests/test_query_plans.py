"""The hot queries use indexes: no statement of intake, routing, the outbox or the timers scans a big table.

Every statement the server runs for a customer message (identity lookup, open conversation lookup, inbound
event dedupe, message insert), a routing pass, an outbox claim and a timer claim is captured as it is sent
to the database, then explained there with the same parameters: ``EXPLAIN QUERY PLAN`` on SQLite (a
``SCAN <table>`` without an index), ``EXPLAIN`` on PostgreSQL with sequential scans priced out (a ``Seq
Scan`` that remains means no index could serve the query, whatever the table's size).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kommutator.reports.worker import reports_worker_of
from kommutator.routing.service import router_of
from kommutator.runtime import Runtime
from kommutator.workers.outbox import OutboxWorker
from kommutator.workers.timers import TimerWorker

from .conftest import Actor, post_inbound

# Tables that grow with traffic; configuration tables (channels, queues, users, policies...) stay small.
BIG = {"messages", "inbound_events", "conversations", "contacts", "contact_identities", "outbox", "timers",
       "conversation_transitions", "attachments", "sla_clocks", "quality_states"}


def _engines(rt: Runtime) -> list[AsyncEngine]:
    write = rt.db._write_engine  # the SQLite writer connection is an engine of its own
    return [rt.db.engine] + ([write] if write is not None else [])


@contextmanager
def captured(rt: Runtime) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and re.match(r"\s*(SELECT|UPDATE|DELETE|WITH)\b", statement, re.I):
            seen.append((statement, parameters))

    engines = [e.sync_engine for e in _engines(rt)]
    for e in engines:
        event.listen(e, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", before)


async def full_scans(rt: Runtime, statements: list[tuple[str, Any]]) -> list[str]:
    """Each statement that reads a big table without an index, with the plan line that says so."""
    bad: list[str] = []
    async with rt.db.engine.connect() as conn:
        if not rt.db.is_sqlite:
            await conn.exec_driver_sql("SET enable_seqscan = off")
        for sql, params in dict.fromkeys((s, tuple(p) if isinstance(p, list) else p) for s, p in statements):
            if rt.db.is_sqlite:
                rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()
                lines = [str(r[-1]) for r in rows]
                scans = [ln for ln in lines if re.match(r"SCAN (\w+)", ln) and "USING" not in ln
                         and re.match(r"SCAN (\w+)", ln).group(1) in BIG]  # type: ignore[union-attr]
            else:
                rows = (await conn.exec_driver_sql("EXPLAIN " + sql, params)).all()
                lines = [str(r[0]) for r in rows]
                scans = [ln for ln in lines if (m := re.search(r"Seq Scan on (\w+)", ln)) and m.group(1) in BIG]
            if scans:
                bad.append(f"{' '.join(sql.split())[:300]}\n    -> {scans[0].strip()}")
        await conn.rollback()
    return bad


async def test_intake_routing_outbox_and_timer_queries_use_indexes(client: httpx.AsyncClient, runtime: Runtime,
                                                                   admin: Actor,
                                                                   api_channel: dict[str, Any]) -> None:
    # Some history first, so that the queries run against rows and every branch (new contact, existing
    # conversation, duplicate event) is taken.
    for n in range(3):
        r = await post_inbound(client, api_channel, msg_id=f"warm-{n}", contact=f"c{n}", text="hi")
        assert r.status_code == 200, r.text
    with captured(runtime) as statements:
        r = await post_inbound(client, api_channel, msg_id="new-contact", contact="fresh", text="hello")
        assert r.status_code == 200, r.text
        r = await post_inbound(client, api_channel, msg_id="same-contact", contact="c1", text="again")
        assert r.status_code == 200, r.text
        r = await post_inbound(client, api_channel, msg_id="same-contact", contact="c1", text="again")
        assert r.status_code == 200, r.text  # the duplicate: answered from the dedupe lookup
        await router_of(runtime).run_pass()
        await OutboxWorker(runtime, name="plans").claim()
        await TimerWorker(runtime.db).run_due()
    kinds = " ".join(s for s, _ in statements)
    for table in ("contact_identities", "conversations", "inbound_events", "outbox", "timers"):
        assert table in kinds, f"no statement on {table} was captured: the test no longer covers it"
    assert await full_scans(runtime, statements) == []


async def test_a_query_without_an_index_is_reported(runtime: Runtime) -> None:
    """The check can fail: a lookup by a column no index covers is a full scan on both databases."""
    placeholder = "?" if runtime.db.is_sqlite else "$1"
    bad = await full_scans(runtime, [(f"SELECT id FROM messages WHERE text = {placeholder}", ("x",))])
    assert len(bad) == 1 and "messages" in bad[0]


REPORTS = {"report_facts", "report_hourly", "report_daily", "report_intents"}


async def test_the_overview_bot_report_and_the_reports_writer_use_indexes(client: httpx.AsyncClient,
                                                                          runtime: Runtime, admin: Actor,
                                                                          api_channel: dict[str, Any]) -> None:
    """The 30-day overview (whole UTC days from the daily histograms; a zone whose midnights fall inside UTC days
    adds the hourly rollups of the edges), its previous period, the agents and bot reports, and a pass of the
    reporting worker read the report tables through indexes: none of them scans a table that grows with history."""
    for n in range(3):
        r = await post_inbound(client, api_channel, msg_id=f"r-{n}", contact=f"c{n}", text="hi")
        assert r.status_code == 200, r.text
    worker = reports_worker_of(runtime)
    await worker.drain()
    BIG.update(REPORTS)
    try:
        with captured(runtime) as statements:
            r = await post_inbound(client, api_channel, msg_id="r-late", contact="c1", text="again")
            assert r.status_code == 200, r.text
            assert await worker.drain() == 1
            for params in ({"tz": "UTC"}, {"tz": "Europe/Moscow"}, {"tz": "UTC", "channel_type": "api"}):
                for path in ("summary", "agents", "bot"):
                    r = await client.get(f"/api/v1/reports/{path}", params=params, headers=admin.headers)
                    assert r.status_code == 200, r.text
        kinds = " ".join(s for s, _ in statements)
        for table in REPORTS:
            assert table in kinds, f"no statement on {table} was captured: the test no longer covers it"
        bad = await full_scans(runtime, statements)
        assert bad == [], "\n".join(bad)
    finally:
        BIG.difference_update(REPORTS)
