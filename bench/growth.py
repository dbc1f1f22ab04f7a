"""P10: intake latency and server memory as the store grows from 0 to 10 million messages.

One real ``kommutator serve`` (seeded with ``kommutator demo --no-serve``) runs for the whole bench. At each
step the history is bulk-inserted straight into the database, beside the running server, up to the step's
number of messages (SQLite: ``executemany`` on the sqlite3 module in transactions of ``--chunk`` messages;
PostgreSQL: asyncpg ``COPY``), then the generator (``load.py``) offers ``--rate`` messages/s for
``--duration`` s to the real webhook and the step records the acknowledgement p50/p99, the server's RSS
(``/proc/<pid>/status``) and the database's size.

History shape: contacts with an identity on the demo API channel, one resolved conversation each with
``--per-conversation`` messages (half in, half out; an inbound event per inbound message) and one
transition, spread over the past year.

    python bench/growth.py                                   # SQLite and PostgreSQL, 0 -> 10 M messages
    python bench/growth.py --steps 0,100000,1000000 --no-pg  # smaller, SQLite only

Targets: p99 and RSS flat across the steps (performance.md, P10). It prints a table and writes
``bench/results/growth-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import (  # noqa: E402  (bench/ is not a package)
    DEMO_TOKEN,
    PY,
    RESULTS,
    ROOT,
    Server,
    free_port,
    pg,
    pg_dsn,
    pg_reachable,
    pinned,
    sqlalchemy_url,
)

EPOCH = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
TABLES = ("contacts", "contact_identities", "conversations", "conversation_transitions", "messages",
          "inbound_events")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def history(first: dict[str, int], n_conv: int, per_conv: int, channel_id: int, tag: str,
            sqlite: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for ``n_conv`` contacts/conversations with ids from ``first`` (one dict per table)."""
    def ts(seconds: float) -> Any:
        t = EPOCH + dt.timedelta(seconds=seconds)
        return t.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else t

    empty = "{}"  # JSON columns: text on SQLite, jsonb from text on PostgreSQL
    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
    span = 365 * 86400
    for i in range(n_conv):
        cid = first["contacts"] + i
        conv = first["conversations"] + i
        k = cid % 1_000_003
        start = (k * 31.0) % span
        rows["contacts"].append((cid, f"History {cid}", None, None, None, empty, None, None, ts(start), ts(start)))
        rows["contact_identities"].append((first["contact_identities"] + i, cid, "api", f"hist-{tag}-{cid}",
                                           f"History {cid}", None, None, None, ts(start)))
        end = start + per_conv * 60
        rows["conversations"].append((conv, cid, "resolved", None, None, None, "normal", "", channel_id, ts(start),
                                      ts(end), ts(end), ts(end - 60), None, None, None, None, None, ts(end), None,
                                      None, "", None, None, 1.0, empty))
        rows["conversation_transitions"].append((first["conversation_transitions"] + i, conv, "bot", "resolved",
                                                 None, None, None, "", ts(end)))
        for j in range(per_conv):
            mid = first["messages"] + i * per_conv + j
            inbound = j % 2 == 0
            at = ts(start + j * 60)
            rows["messages"].append((mid, conv, "in" if inbound else "out", "contact" if inbound else "bot", None,
                                     "text", channel_id, f"hist-{tag}-{mid}" if inbound else None,
                                     f"history message {j}", empty, "received" if inbound else "sent", "", at, None))
            if inbound:
                rows["inbound_events"].append((first["inbound_events"] + i * per_conv + j, channel_id,
                                               f"hist-{tag}-{mid}", "processed", None, None, "", "{}", "text",
                                               mid, at))
    return rows


COLUMNS = {
    "contacts": ("id", "name", "email", "phone", "language", "attributes", "manager_id", "merged_into_id",
                 "created_at", "updated_at"),
    "contact_identities": ("id", "contact_id", "channel_type", "external_id", "display", "verified_email",
                           "verified_phone", "linked_by", "created_at"),
    "conversations": ("id", "contact_id", "status", "assignee_id", "team_id", "queue_id", "priority", "subject",
                      "last_inbound_channel_id", "created_at", "updated_at", "last_message_at",
                      "last_customer_message_at", "queued_at", "assigned_at", "first_response_at", "waiting_since",
                      "snoozed_until", "resolved_at", "reopened_at", "preferred_agent_id", "routing_hold",
                      "hold_until", "accepted_at", "routing_weight", "routing_notices"),
    "conversation_transitions": ("id", "conversation_id", "from_status", "to_status", "assignee_id", "team_id",
                                 "actor_user_id", "reason", "at"),
    "messages": ("id", "conversation_id", "direction", "sender_type", "sender_user_id", "kind", "channel_id",
                 "provider_message_id", "text", "payload", "status", "status_reason", "created_at",
                 "status_updated_at"),
    "inbound_events": ("id", "channel_id", "provider_event_id", "status", "ref", "pending", "error", "body",
                       "body_encoding", "message_id", "received_at"),
}
RATIO = {"contacts": 1, "contact_identities": 1, "conversations": 1, "conversation_transitions": 1}


def need(n_conv: int, per_conv: int) -> dict[str, int]:
    return {**{t: n_conv for t in RATIO}, "messages": n_conv * per_conv, "inbound_events": n_conv * per_conv}


class SqliteFiller:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA busy_timeout=30000")

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM messages").fetchone()[0])

    def fill(self, n_conv: int, per_conv: int, channel_id: int, tag: str) -> None:
        self.db.execute("BEGIN IMMEDIATE")  # holds the write lock: the ids taken below stay free
        try:
            first = {t: int(self.db.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {t}").fetchone()[0])
                     for t in TABLES}
            rows = history(first, n_conv, per_conv, channel_id, tag, sqlite=True)
            for t in TABLES:
                cols = COLUMNS[t]
                self.db.executemany(f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                    rows[t])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def analyze(self) -> None:
        self.db.execute("ANALYZE")

    def size(self) -> int:
        path = self.db.execute("PRAGMA database_list").fetchone()[2]
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


class PgFiller:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def count(self) -> int:
        return int(pg(self.dsn, "SELECT count(*) FROM messages"))

    def fill(self, n_conv: int, per_conv: int, channel_id: int, tag: str) -> None:
        asyncio.run(self._fill(n_conv, per_conv, channel_id, tag))

    async def _fill(self, n_conv: int, per_conv: int, channel_id: int, tag: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            first = {}
            for t, n in need(n_conv, per_conv).items():
                # Reserve a block of ids from the table's sequence; the server's own inserts take later ones.
                end = await conn.fetchval(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                          f"nextval(pg_get_serial_sequence('{t}', 'id')) + {n})")
                first[t] = int(end) - n + 1
            rows = history(first, n_conv, per_conv, channel_id, tag, sqlite=False)
            async with conn.transaction():
                for t in TABLES:
                    await conn.copy_records_to_table(t, records=rows[t], columns=list(COLUMNS[t]))
        finally:
            await conn.close()

    def analyze(self) -> None:
        asyncio.run(self._analyze())

    async def _analyze(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute("ANALYZE " + ", ".join(TABLES))
        finally:
            await conn.close()

    def size(self) -> int:
        return int(pg(self.dsn, "SELECT pg_database_size(current_database())"))


def run_backend(args: argparse.Namespace, backend: str, work: Path) -> dict[str, Any]:
    port = free_port()
    data = work / f"growth-{backend}"
    env = {"KOMMUTATOR_DATA_DIR": str(data), "KOMMUTATOR_LISTEN_PORT": str(port),
           "KOMMUTATOR_CONFIG": str(work / "no-kommutator.toml")}
    dbname = f"kgrowth_{int(time.time())}"
    if backend == "postgresql":
        pg(pg_dsn(args.pg_url), f'CREATE DATABASE "{dbname}"')
        env["KOMMUTATOR_DATABASE_URL"] = sqlalchemy_url(args.pg_url, dbname)
    kommutator = str(Path(PY).with_name("kommutator"))
    seed = subprocess.run([kommutator, "demo", "--no-serve", "--data-dir", str(data)], capture_output=True,
                          env={**os.environ, **env}, cwd=ROOT, check=False, timeout=300)
    if seed.returncode != 0:
        raise RuntimeError(f"kommutator demo --no-serve failed:\n{seed.stdout.decode()}\n{seed.stderr.decode()}")
    filler: SqliteFiller | PgFiller = (SqliteFiller(data / "kommutator.db") if backend == "sqlite"
                                       else PgFiller(pg_dsn(args.pg_url, dbname)))
    server = Server("ours", pinned([kommutator, "serve"], args.server_cpu), port, work / f"growth-{backend}.log", env)
    out: dict[str, Any] = {"backend": backend, "steps": []}
    try:
        server.start()
        assert server.proc is not None
        for n, target in enumerate(args.steps):
            t0 = time.monotonic()
            have = filler.count()
            while have < target:
                todo = min(args.chunk, target - have)
                filler.fill(max(1, todo // args.per_conversation), args.per_conversation, 1, f"{n}")
                have = filler.count()
                print(f"  [{backend}] filled {have:>11,} messages ({time.monotonic() - t0:6.1f} s)", flush=True)
            if target:
                filler.analyze()  # what an operator's maintenance (or autovacuum) does; plans see the real sizes
            fill_s = time.monotonic() - t0
            cmd = pinned([PY, str(BENCH / "load.py"), "--port", str(port), "--rate", str(args.rate),
                          "--duration", str(args.duration), "--prefix", f"g{backend[0]}{n}-{int(time.time())}",
                          "--contacts", "1000", "--token", DEMO_TOKEN], args.load_cpu)
            proc = subprocess.run(cmd, capture_output=True, timeout=args.duration + 120, check=False)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.decode(errors="replace")[-2000:])
            res = json.loads(proc.stdout)
            time.sleep(2)  # background work of the step (bot answers, monitor) before memory is read
            step = {"messages": have, "fill_seconds": round(fill_s, 1), "rate": args.rate, "ok": res["ok"],
                    "scheduled": res["scheduled"], "latency_ms": res["latency_ms"],
                    "rss_mib": round(rss_kib(server.proc.pid) / 1024, 1), "db_mib": round(filler.size() / 2**20, 1)}
            out["steps"].append(step)
            lat = step["latency_ms"]
            print(f"[{backend}] {have:>11,} messages: ok {res['ok']}/{res['scheduled']} p50 {lat['p50']} "
                  f"p99 {lat['p99']} ms, RSS {step['rss_mib']} MiB, database {step['db_mib']} MiB "
                  f"(filled in {fill_s:.0f} s)", flush=True)
    finally:
        server.stop()
        if backend == "postgresql" and not args.keep:
            pg(pg_dsn(args.pg_url), f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", default="0,100000,1000000,3000000,10000000",
                   help="message counts to measure at, comma-separated (default up to 10 M)")
    p.add_argument("--rate", type=float, default=100.0, help="messages/s offered at each step")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load at each step")
    p.add_argument("--chunk", type=int, default=100_000, help="messages per bulk-insert transaction")
    p.add_argument("--per-conversation", type=int, default=10)
    p.add_argument("--pg-url", default=os.environ.get("KOMMUTATOR_BENCH_PG_URL",
                                                      "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--load-cpu", default="1")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    args.steps = [int(s) for s in args.steps.split(",")]
    if shutil.which("taskset") is None:
        args.server_cpu = args.load_cpu = None
    work = Path(tempfile.mkdtemp(prefix="kommutator-growth-"))
    (work / "no-kommutator.toml").touch()
    started = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {"started_at": started.isoformat(), "args": {k: str(v) for k, v in vars(args).items()}}
    t0 = time.monotonic()
    try:
        if not args.no_sqlite:
            report["sqlite"] = run_backend(args, "sqlite", work)
        if not args.no_pg:
            why = pg_reachable(args.pg_url)
            report["postgresql"] = {"skipped": why} if why else run_backend(args, "postgresql", work)
    finally:
        report["wall_seconds"] = round(time.monotonic() - t0, 1)
        RESULTS.mkdir(exist_ok=True)
        out = args.out or RESULTS / f"growth-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        print(f"\n{'backend':<11} {'messages':>11} {'ok':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} "
              f"{'db MiB':>8} {'fill s':>7}")
        for backend in ("sqlite", "postgresql"):
            for s in (report.get(backend) or {}).get("steps", []):
                print(f"{backend:<11} {s['messages']:>11,} {s['ok']:>4}/{s['scheduled']:<4} "
                      f"{s['latency_ms']['p50']:>8} {s['latency_ms']['p99']:>8} {s['rss_mib']:>8} "
                      f"{s['db_mib']:>8} {s['fill_seconds']:>7}")
        print(f"\nWrote {out} ({report['wall_seconds']} s)")
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
