"""The only writers of the report tables: store facts and bring the hourly rollups of their hours up to date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from kommutator.clock import now
from kommutator.db import Database, Tx
from kommutator.reports.facts import load_facts
from kommutator.reports.histogram import bucket_of
from kommutator.reports.metrics import metrics, register_all
from kommutator.reports.models import ReportDaily, ReportFact, ReportHourly, ReportIntent

DIMS = ("channel_id", "channel_type", "team_id", "queue_id", "agent_id", "bot_flow_id")
ALL_AGENTS = -1  # report_daily.agent_key of the rows of all agents together (0: conversations without an agent)
HOUR_OF_ANCHOR = {"started": "started_hour", "resolved": "resolved_hour", "rated": "rated_hour"}
_facts = cast(Table, ReportFact.__table__)
_hourly = cast(Table, ReportHourly.__table__)
_daily = cast(Table, ReportDaily.__table__)
_intents = cast(Table, ReportIntent.__table__)
# The key of the PostgreSQL advisory lock every writer of the report tables takes for its transaction: rollups are
# kept by reading the old rows and adding differences, so two processes (two app servers, the app and a
# ``reports rebuild``) writing at once would count a change twice. SQLite has one writer anyway.
WRITER_LOCK = 7250001


async def lock_writers(tx: Tx) -> None:
    """Wait until no other transaction writes the report tables, then hold that until this one ends (PostgreSQL)."""
    if tx.conn.dialect.name == "postgresql":
        await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITER_LOCK})


async def _put_facts(tx: Tx, facts: list[dict[str, Any]]) -> None:
    """Insert fact rows and the report_intents rows they carry (the caller deleted the conversations' old ones)."""
    ts = now()
    await tx.conn.execute(_facts.insert(), [{**{k: v for k, v in f.items() if k != "intents"}, "computed_at": ts}
                                            for f in facts])
    heard = [row for f in facts for row in f.get("intents") or []]
    if heard:
        await tx.conn.execute(_intents.insert(), heard)


def rolled_columns() -> dict[str, str]:
    """Every fact column a metric reads (wall-clock and business), with the hour column it is counted in."""
    out: dict[str, str] = {}
    for m in metrics().values():
        for col in (m.column, m.business_column):
            if col:
                out[col] = HOUR_OF_ANCHOR[m.anchor]
    return out


_statements: dict[str, Any] = {}


def _plan() -> list[tuple[str, list[str], Any]]:
    """Per anchor: its hour column, the fact columns counted at it, and the SELECT of an hour set (built once)."""
    if "plan" not in _statements:
        if not metrics():  # a process that never built the app (a script, a test fixture): the built-in KPIs
            register_all()
        by_hour: dict[str, list[str]] = {}
        for col, hour_col in rolled_columns().items():
            by_hour.setdefault(hour_col, []).append(col)
        _statements["plan"] = [
            (hour_col, cols, select(_facts.c[hour_col], *[_facts.c[d] for d in DIMS], *[_facts.c[c] for c in cols])
             .where(_facts.c[hour_col].in_(bindparam("hours", expanding=True)))
             .order_by(_facts.c.conversation_id))
            for hour_col, cols in sorted(by_hour.items())]
        _statements["delete"] = delete(_hourly).where(_hourly.c.hour.in_(bindparam("hours", expanding=True)))
        _statements["old"] = (select(_hourly.c.hour, _hourly.c.metric, _hourly.c.agent_id, _hourly.c.bucket,
                                     _hourly.c.n, _hourly.c.total)
                              .where(_hourly.c.hour.in_(bindparam("hours", expanding=True))))
        _statements["old_hours"] = (select(_facts.c.started_hour, _facts.c.resolved_hour, _facts.c.rated_hour)
                                    .where(_facts.c.conversation_id.in_(bindparam("ids", expanding=True))))
        _statements["delete_facts"] = delete(_facts).where(_facts.c.conversation_id.in_(bindparam("ids",
                                                                                                expanding=True)))
        _statements["delete_intents"] = delete(_intents).where(
            _intents.c.conversation_id.in_(bindparam("ids", expanding=True)))
        _statements["daily_gone"] = delete(_daily).where(_daily.c.agent_key.in_(bindparam("keys", expanding=True)),
                                                         _daily.c.day.in_(bindparam("days", expanding=True)),
                                                         _daily.c.n == 0)
    return cast(list[tuple[str, list[str], Any]], _statements["plan"])


async def _roll(tx: Tx, hours: set[dt.datetime]) -> None:
    """Recompute the rollups of ``hours`` from the facts counted in them: delete, aggregate per histogram
    bucket, insert.

    Facts are read in conversation order so that a live pass and a rebuild add the same floats in the same order.
    """
    plan = _plan()
    ordered = sorted(hours)
    for i in range(0, len(ordered), 200):
        chunk = ordered[i:i + 200]
        # The daily histograms change by what these hours' rollups change: minus the old rows, plus the new.
        delta: dict[tuple[Any, ...], list[Any]] = {}
        for hour, metric, agent, bucket, n, total in (await tx.conn.execute(_statements["old"],
                                                                            {"hours": chunk})).all():
            for key in (ALL_AGENTS, agent or 0):
                acc = delta.setdefault((_day(hour), metric, key, bucket), [0, 0.0])
                acc[0] -= n
                acc[1] -= total
        await tx.conn.execute(_statements["delete"], {"hours": chunk})
        sums: dict[tuple[Any, ...], list[Any]] = {}
        for _hour_col, cols, stmt in plan:
            for row in (await tx.conn.execute(stmt, {"hours": chunk})).all():
                head = tuple(row[:1 + len(DIMS)])
                for j, col in enumerate(cols):
                    value = row[1 + len(DIMS) + j]
                    if value is None:
                        continue
                    acc = sums.setdefault((head[0], col, *head[1:], bucket_of(value)), [0, 0.0])
                    acc[0] += 1
                    acc[1] += value
        if sums:
            await tx.conn.execute(_hourly.insert(), [
                {"hour": k[0], "metric": k[1], **dict(zip(DIMS, k[2:-1], strict=True)), "bucket": k[-1], "n": n,
                 "total": float(total)}
                for k, (n, total) in sums.items()])
        agent_at = 2 + DIMS.index("agent_id")
        for k, (n, total) in sums.items():
            for key in (ALL_AGENTS, k[agent_at] or 0):
                acc = delta.setdefault((_day(k[0]), k[1], key, k[-1]), [0, 0.0])
                acc[0] += n
                acc[1] += total
        changes = [{"day_": k[0], "metric_": k[1], "agent_key_": k[2], "bucket_": k[3], "n_": n, "total_": float(t)}
                   for k, (n, t) in delta.items() if n or t]
        if changes:
            await tx.conn.execute(_daily_upsert(tx.conn.dialect.name), changes)
            await tx.conn.execute(_statements["daily_gone"], {"keys": sorted({c["agent_key_"] for c in changes}),
                                                              "days": sorted({c["day_"] for c in changes})})


def _day(hour: dt.datetime) -> dt.datetime:
    return hour.replace(hour=0, minute=0, second=0, microsecond=0)


def _daily_upsert(dialect: str) -> Any:
    key = f"daily_{dialect}"
    if key not in _statements:
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_daily).values(
            day=bindparam("day_"), metric=bindparam("metric_"), agent_key=bindparam("agent_key_"),
            bucket=bindparam("bucket_"), n=bindparam("n_"), total=bindparam("total_"))
        _statements[key] = ins.on_conflict_do_update(
            index_elements=[_daily.c.day, _daily.c.metric, _daily.c.agent_key, _daily.c.bucket],
            set_={"n": _daily.c.n + ins.excluded.n, "total": _daily.c.total + ins.excluded.total})
    return _statements[key]


def _hours(rows: Iterable[Any]) -> set[dt.datetime]:
    return {h for r in rows for h in (r["started_hour"], r["resolved_hour"], r["rated_hour"]) if h is not None}


async def do_store_facts(tx: Tx, facts: list[dict[str, Any]], gone: list[int]) -> int:
    """Replace the facts of these conversations (and drop those of ``gone``), then recompute the rollups of
    every hour they were or now are counted in; the number stored."""
    ids = [f["conversation_id"] for f in facts] + list(gone)
    if not ids:
        return 0
    _plan()  # builds the statements once: an IN of literal ids was rebuilt (and recompiled) on every pass
    await lock_writers(tx)
    old = (await tx.conn.execute(_statements["old_hours"], {"ids": ids})).mappings().all()
    hours = _hours(old) | _hours(facts)
    await tx.conn.execute(_statements["delete_facts"], {"ids": ids})
    await tx.conn.execute(_statements["delete_intents"], {"ids": ids})
    if facts:
        await _put_facts(tx, facts)
    await _roll(tx, hours)
    return len(facts)


async def rebuild(db: Database, *, chunk: int = 500) -> int:
    """Recompute every fact and rollup from raw history; idempotent. The number of conversations."""
    from kommutator.conversations.models import Conversation

    async def clear(tx: Tx) -> None:
        await lock_writers(tx)
        await tx.conn.execute(delete(_intents))
        await tx.conn.execute(delete(_daily))
        await tx.conn.execute(delete(_hourly))
        await tx.conn.execute(delete(_facts))

    await db.write(clear)
    done, after = 0, 0
    while True:
        async with db.read() as s:
            ids = list((await s.execute(select(Conversation.id).where(Conversation.id > after)
                                        .order_by(Conversation.id).limit(chunk))).scalars())
            if not ids:
                break
            facts, _ = await load_facts(s, ids)
        after = ids[-1]

        async def store(tx: Tx, rows: list[dict[str, Any]] = facts) -> None:
            if rows:  # the live worker may have stored some of them meanwhile
                await lock_writers(tx)
                done_ids = [f["conversation_id"] for f in rows]
                await tx.conn.execute(delete(_facts).where(_facts.c.conversation_id.in_(done_ids)))
                await tx.conn.execute(delete(_intents).where(_intents.c.conversation_id.in_(done_ids)))
                await _put_facts(tx, rows)

        await db.write(store)
        done += len(facts)

    async with db.read() as s:
        hours: set[dt.datetime] = set()
        for col in ("started_hour", "resolved_hour", "rated_hour"):
            hours |= {h for h in (await s.execute(select(_facts.c[col]).distinct())).scalars() if h is not None}
    ordered = sorted(hours)
    for i in range(0, len(ordered), 200):

        async def roll(tx: Tx, chunk: list[dt.datetime] = ordered[i:i + 200]) -> None:
            await lock_writers(tx)
            await _roll(tx, set(chunk))

        await db.write(roll)
    return done


def changed_since_filter(since: dt.datetime) -> Any:
    """Conversations whose history may have changed since ``since`` (for the catch-up sweep)."""
    from kommutator.bot.models import BotSession
    from kommutator.conversations.models import Conversation
    from kommutator.quality.models import Rating, SlaClock

    return or_(Conversation.updated_at >= since, Conversation.last_message_at >= since,
               Conversation.id.in_(select(SlaClock.conversation_id).where(SlaClock.updated_at >= since)),
               Conversation.id.in_(select(Rating.conversation_id).where(Rating.created_at >= since)),
               Conversation.id.in_(select(BotSession.conversation_id).where(BotSession.updated_at >= since)))


async def do_record_presence(tx: Tx, user_ids: Iterable[int]) -> int:
    """Append each user's current presence to their presence history when it differs from the last entry."""
    from kommutator.agents.models import User
    from kommutator.reports.models import PresenceChange

    added = 0
    for uid in sorted(set(user_ids)):
        user = await tx.session.get(User, uid)
        if user is None:
            continue
        last = await tx.session.scalar(select(PresenceChange.presence).where(PresenceChange.user_id == uid)
                                       .order_by(PresenceChange.at.desc(), PresenceChange.id.desc()).limit(1))
        if last != user.presence and (last is not None or user.presence == "online"):
            tx.session.add(PresenceChange(user_id=uid, presence=user.presence,
                                          at=user.presence_changed_at or now()))
            added += 1
    return added
