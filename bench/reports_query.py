"""How fast the report API answers over many conversations' facts (P8), and its ratio to hand-written SQL.

``python bench/reports_query.py --conversations 100000`` fills ``report_facts`` with synthetic facts spread over
90 days (and their hourly rollups through the same code as the worker), then times the 30-day summary, a daily
series of the same period, and the agents report through the API in-process (SQLite unless --database-url).

For the summary it also times hand-written SQL giving the same figures (each metric's count, mean, median and
90th percentile over the 30 days, count and mean over the 30 days before) and prints the API's ratio to it:

- ``sql on facts``: straight from the fact rows (one per conversation) — count and mean by aggregate, median and
  p90 exactly (PostgreSQL: ``percentile_disc``; SQLite, which has none: ``ORDER BY … LIMIT 1 OFFSET`` per metric);
- ``sql on rollups``: the one GROUP BY per period over the daily histograms that the API itself reads (the
  periods here are whole UTC days), percentiles from the summed buckets: what the API costs beyond its query.

The CPU time of the process is printed beside each (on a shared machine it moves less than wall time; on
PostgreSQL it leaves out the server's own CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, func, select, text

from kommutator.app import create_app
from kommutator.config import load_settings
from kommutator.db import Tx
from kommutator.migrate import upgrade
from kommutator.reports.actions import _roll
from kommutator.reports.facts import hour_of
from kommutator.reports.models import ReportFact
from kommutator.runtime import Runtime

ANCHOR_AT = {"started": "started_at", "resolved": "resolved_at", "rated": "rated_at"}


def metric_columns() -> list[tuple[str, str]]:
    """(fact column, anchor column) of every metric the summary shows (wall clock)."""
    from kommutator.reports.metrics import metrics

    return [(m.column, ANCHOR_AT[m.anchor]) for m in metrics().values() if m.column]


async def sql_on_facts(rt: Runtime, lo: dt.datetime, hi: dt.datetime, prev: dt.datetime, pg: bool) -> int:
    """The summary's figures by hand-written SQL over the fact rows; the number of values read back."""
    out = 0
    async with rt.db.read() as s:
        for col, at in metric_columns():
            if pg:
                q = (f"SELECT count({col}), avg({col}), percentile_disc(0.5) WITHIN GROUP (ORDER BY {col}), "
                     f"percentile_disc(0.9) WITHIN GROUP (ORDER BY {col}) FROM report_facts "
                     f"WHERE {at} >= :lo AND {at} < :hi")
                out += len((await s.execute(text(q), {"lo": lo, "hi": hi})).all())
            else:
                n, _mean = (await s.execute(text(f"SELECT count({col}), avg({col}) FROM report_facts "
                                                 f"WHERE {at} >= :lo AND {at} < :hi"), {"lo": lo, "hi": hi})).one()
                for rank in {(n - 1) // 2, max(0, -(-9 * n // 10) - 1)} if n else ():
                    out += len((await s.execute(text(
                        f"SELECT {col} FROM report_facts WHERE {at} >= :lo AND {at} < :hi AND {col} IS NOT NULL "
                        f"ORDER BY {col} LIMIT 1 OFFSET :k"), {"lo": lo, "hi": hi, "k": rank})).all())
            out += len((await s.execute(text(f"SELECT count({col}), avg({col}) FROM report_facts "
                                             f"WHERE {at} >= :lo AND {at} < :hi"), {"lo": prev, "hi": lo})).all())
    return out


async def sql_on_rollups(rt: Runtime, lo: dt.datetime, hi: dt.datetime, prev: dt.datetime) -> int:
    """The same figures by hand-written SQL over the histograms the API reads (both periods start and end on UTC
    midnights here: the daily histograms alone), percentiles from the summed buckets."""
    from kommutator.reports.histogram import Histogram

    out = 0
    async with rt.db.read() as s:
        for a, b in ((lo, hi), (prev, lo)):
            hists: dict[str, Histogram] = {}
            for metric, bucket, n, total in (await s.execute(text(
                    "SELECT metric, bucket, sum(n), sum(total) FROM report_daily WHERE agent_key = -1 AND day >= :lo "
                    "AND day < :hi "
                    "GROUP BY metric, bucket"), {"lo": a, "hi": b})).all():
                hists.setdefault(metric, Histogram()).add(bucket, n, total)
            out += sum(1 for h in hists.values() if h.median() is not None and h.p90() is not None)
    return out


def fake(i: int, now: dt.datetime, rng: random.Random) -> dict[str, Any]:
    started = now - dt.timedelta(seconds=rng.uniform(0, 90 * 86400))
    frt = rng.expovariate(1 / 120)
    resolved = started + dt.timedelta(seconds=frt + rng.expovariate(1 / 900))
    rated = resolved + dt.timedelta(hours=rng.uniform(0, 48)) if rng.random() < 0.3 else None
    score = rng.randint(1, 5)
    return {"conversation_id": i, "channel_id": rng.randint(1, 5), "channel_type": rng.choice(["telegram", "email",
            "webchat"]), "team_id": rng.randint(1, 3), "queue_id": rng.randint(1, 4), "agent_id": rng.randint(1, 40),
            "bot_flow_id": None, "started_at": started, "handoff_at": started, "assigned_at": started,
            "first_response_at": started + dt.timedelta(seconds=frt), "resolved_at": resolved, "rated_at": rated,
            "started_hour": hour_of(started), "resolved_hour": hour_of(resolved),
            "rated_hour": hour_of(rated) if rated else None, "conversations": 1, "messages_in": rng.randint(1, 12),
            "messages_out": rng.randint(1, 12), "resolutions": 1, "reopens": 0, "transfers": 0,
            "wait_s": frt / 2, "wait_bs": frt / 2, "first_response_s": frt, "first_response_bs": frt,
            "response_s": rng.expovariate(1 / 60), "response_bs": None, "responses": 2,
            "handle_s": (resolved - started).total_seconds(), "handle_bs": None,
            "resolution_s": (resolved - started).total_seconds(), "resolution_bs": None,
            "service_level": int(frt <= 60), "service_level_bs": int(frt <= 60), "sla_compliance": rng.randint(0, 1),
            "abandonment": 0, "bot_containment": None, "csat": int(score >= 4) if rated else None,
            "csat_score": score if rated else None, "nps": None, "nps_score": None, "computed_at": now}


async def main(n: int, url: str | None, repeat: int, reuse: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{tmp}/k.db"
        await upgrade(url)
        rt = Runtime.build(load_settings(data_dir=Path(tmp) / "d", database_url=url, secret_key="s" * 48))
        await rt.db.start()
        app = create_app(runtime=rt)
        now = dt.datetime.now(dt.UTC)
        rng = random.Random(1)
        facts = ReportFact.__table__
        assert isinstance(facts, Table)
        # Facts need conversations (foreign key): insert bare ones in the same chunks.
        from kommutator.contacts.models import Contact
        from kommutator.conversations.models import Conversation

        async def contact(tx: Tx) -> int:
            c = Contact(name="bench")
            tx.session.add(c)
            await tx.session.flush()
            return c.id

        t0 = time.monotonic()
        async with rt.db.read() as s:
            have = await s.scalar(select(func.count()).select_from(facts))
        if reuse and have == n:  # the same database filled by an earlier run (e.g. before and after an index)
            print(f"reusing {have} conversations' facts and rollups")
            n = 0
        elif have:
            raise SystemExit(f"the database already holds {have} facts; pass --reuse with --conversations {have} "
                             "or use an empty database")
        cid = await rt.db.write(contact) if n else 0
        for start in range(1, n + 1, 5000):
            rows = [fake(i, now, rng) for i in range(start, min(n + 1, start + 5000))]

            async def put(tx: Tx, rows: list[dict[str, Any]] = rows) -> None:
                await tx.conn.execute(Conversation.__table__.insert(), [  # type: ignore[attr-defined]
                    {"id": r["conversation_id"], "contact_id": cid, "status": "resolved", "priority": "normal",
                     "subject": "", "created_at": r["started_at"], "updated_at": r["started_at"],
                     "last_message_at": r["started_at"], "routing_hold": "", "routing_weight": 1.0,
                     "routing_notices": {}} for r in rows])
                await tx.conn.execute(facts.insert(), rows)

            await rt.db.write(put)
        if n:
            async with rt.db.read() as s:
                hours = set()
                for col in ("started_hour", "resolved_hour", "rated_hour"):
                    hours |= {h for h in (await s.execute(select(facts.c[col]).distinct())).scalars() if h}
            ordered = sorted(hours)
            for i in range(0, len(ordered), 200):  # as `reports rebuild` does: one transaction per 200 hours
                await rt.db.write(lambda tx, chunk=ordered[i:i + 200]: _roll(tx, set(chunk)))
            print(f"{n} conversations' facts and rollups in {time.monotonic() - t0:.1f} s")
        if url.startswith("postgresql"):  # statistics of the freshly loaded tables, as autovacuum would gather
            async with rt.db.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
        from kommutator.auth.actions import do_create_api_token
        from kommutator.auth.principal import Principal

        admin = Principal(user_id=0, name="bench", role="admin", team_ids=frozenset())
        from kommutator.agents.actions import do_create_user
        from kommutator.agents.schemas import UserCreate

        async def user(tx: Tx) -> str:
            u = await do_create_user(tx, None, UserCreate(email=f"b{time.time_ns()}@example.com", name="B",
                                                          password="x" * 12, role="admin"), password_hash="x")
            return (await do_create_api_token(tx, Principal(user_id=u.id, name="B", role="admin",
                                                            team_ids=frozenset()), "bench"))[1]

        del admin
        token = await rt.db.write(user)
        end = now.date()
        period = {"start": str(end - dt.timedelta(days=29)), "end": str(end)}
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
            for name, path, extra in (("summary (30 days)", "summary", {}),
                                      ("series per day by channel type", "timeseries",
                                       {"metric": "first_response_time", "interval": "day",
                                        "group_by": "channel_type"}),
                                      ("agents (30 days)", "agents", {})):
                times, cpu = [], []
                for _ in range(repeat):
                    t, c = time.monotonic(), time.process_time()
                    r = await client.get(f"/api/v1/reports/{path}", params={**period, **extra},
                                         headers={"Authorization": f"Bearer {token}"})
                    times.append(1000 * (time.monotonic() - t))
                    cpu.append(1000 * (time.process_time() - c))
                    assert r.status_code == 200, r.text
                print(f"{name:34s} median {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms  "
                      f"CPU median {statistics.median(cpu):7.1f} ms")
                if path == "summary":
                    api_median = statistics.median(times)
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(load_settings(data_dir=Path(tmp) / "d", database_url=url, secret_key="s" * 48).timezone)
        lo = dt.datetime.combine(end - dt.timedelta(days=29), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.UTC)
        prev = lo - (hi - lo)
        pg = url.startswith("postgresql")
        for name, run in (("sql on facts", lambda: sql_on_facts(rt, lo, hi, prev, pg)),
                          ("sql on rollups", lambda: sql_on_rollups(rt, lo, hi, prev))):
            times, cpu = [], []
            for _ in range(repeat):
                t, c = time.monotonic(), time.process_time()
                await run()
                times.append(1000 * (time.monotonic() - t))
                cpu.append(1000 * (time.process_time() - c))
            med = statistics.median(times)
            print(f"summary by {name:23s} median {med:8.1f} ms  max {max(times):8.1f} ms  "
                  f"CPU median {statistics.median(cpu):7.1f} ms  API / this {api_median / med:5.2f}")
        await rt.db.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--database-url")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--reuse", action="store_true", help="measure again on the facts an earlier run left in "
                   "--database-url (same --conversations) instead of generating them")
    a = p.parse_args()
    asyncio.run(main(a.conversations, a.database_url, a.repeat, a.reuse))
