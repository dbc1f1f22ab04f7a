"""The forecast's reads of conversation transitions go through the (to_status, at) index, not a scan of the
whole timeline: the database's own query plan says so (SQLite: that index; PostgreSQL, whose planner picks among
indexes by the tables' size: no sequential scan of the transitions)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from kommutator.forecast.queries import _arrival_filter
from kommutator.runtime import Runtime

INDEX = "ix_conversation_transitions_status_at"


async def _plan(rt: Runtime, stmt: object) -> str:
    async with rt.db.read() as s:
        conn = await s.connection()
        sql = str(stmt.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
        if conn.dialect.name == "postgresql":
            await s.execute(text("SET LOCAL enable_seqscan = off"))  # the test tables are tiny: ask for the plan
            rows = (await s.execute(text("EXPLAIN " + sql))).all()   # the planner would choose on real volumes
            return "\n".join(r[0] for r in rows)
        rows = (await s.execute(text("EXPLAIN QUERY PLAN " + sql))).all()
        return "\n".join(str(r[-1]) for r in rows)


async def test_arrivals_and_handle_times_read_transitions_by_index(runtime: Runtime) -> None:
    from sqlalchemy import select

    from kommutator.conversations.models import Conversation, Transition

    since = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    until = since + dt.timedelta(days=28)
    arrivals = (select(Transition.at).join(Conversation, Conversation.id == Transition.conversation_id)
                .where(_arrival_filter(1), Transition.at >= since, Transition.at < until))
    handled = (select(Transition.conversation_id, Transition.to_status, Transition.at)
               .join(Conversation, Conversation.id == Transition.conversation_id)
               .where(Conversation.queue_id == 1, Transition.to_status.in_(("assigned", "resolved")),
                      Transition.at >= since - dt.timedelta(days=30), Transition.at < until))
    for stmt in (arrivals, handled):
        plan = await _plan(runtime, stmt)
        if runtime.db.engine.dialect.name == "postgresql":  # on tiny tables it may reach the transitions through
            # the conversation's index instead; what matters is that none scans them all.
            assert "Seq Scan on conversation_transitions" not in plan, plan
            assert "conversation_transitions" in plan and "Index" in plan, plan
        else:
            assert INDEX in plan, plan
