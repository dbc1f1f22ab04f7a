"""P7, the assignment storm: N server processes share one PostgreSQL database and route conversations while
agents come and go and conversations are resolved; a sampler reads every agent's load many times a second.

    python bench/storm.py [--pg-url URL] [--conversations 1000] [--agents 100] [--processes 3] [--seconds 20]

Prints and writes bench/results/storm-<timestamp>.json: capacity violations seen by the sampler, conversations
assigned by routing more than once (both must be 0), assignments made and passes per second. The same storm,
smaller, is the test tests/test_routing_storm.py (run in CI on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.storm_worker import storm  # noqa: E402

from kommutator.agents.models import User  # noqa: E402
from kommutator.clock import now  # noqa: E402
from kommutator.config import load_settings  # noqa: E402
from kommutator.contacts.models import Contact  # noqa: E402
from kommutator.conversations.models import Conversation, Transition  # noqa: E402
from kommutator.db import Tx  # noqa: E402
from kommutator.migrate import upgrade  # noqa: E402
from kommutator.queues.models import Queue  # noqa: E402
from kommutator.runtime import Runtime  # noqa: E402


async def _prepare(admin_url: str, url: str, agents: int, conversations: int, data_dir: str) -> dict[int, int]:
    name = url.rsplit("/", 1)[1]
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    await upgrade(url)
    rt = Runtime.build(load_settings(data_dir=Path(data_dir), database_url=url, secret_key="bench-" + "x" * 40))
    await rt.db.start()
    capacities: dict[int, int] = {}

    async def job(tx: Tx) -> None:
        queue = Queue(name="Storm", strategy="least_busy", accept_timeout_seconds=0, wait_notice_seconds=0)
        tx.session.add(queue)
        ts = now()
        users = [User(email=f"agent{i}@bench.invalid", name=f"Agent {i}", role="agent", capacity=1 + i % 4,
                      presence="online", presence_changed_at=ts) for i in range(agents)]
        tx.session.add_all(users)
        await tx.session.flush()
        capacities.update({u.id: u.capacity for u in users})
        contacts = [Contact(name=f"Customer {i}", created_at=ts, updated_at=ts) for i in range(conversations)]
        tx.session.add_all(contacts)
        await tx.session.flush()
        tx.session.add_all([Conversation(contact_id=c.id, status="queued", queue_id=queue.id,
                                         queued_at=ts + dt.timedelta(microseconds=i), created_at=ts, updated_at=ts,
                                         last_message_at=ts) for i, c in enumerate(contacts)])

    await rt.db.write(job)
    await rt.db.close()
    return capacities


async def _sampler(url: str, data_dir: str, capacities: dict[int, int], procs: list[multiprocessing.Process]
                   ) -> tuple[int, list[dict[int, float]]]:
    rt = Runtime.build(load_settings(data_dir=Path(data_dir), database_url=url, secret_key="bench-" + "x" * 40))
    await rt.db.start()
    samples, violations = 0, []
    while any(p.is_alive() for p in procs):
        async with rt.db.read() as s:
            rows = (await s.execute(select(Conversation.assignee_id, func.sum(Conversation.routing_weight))
                                    .where(Conversation.status == "assigned")
                                    .group_by(Conversation.assignee_id))).all()
        over = {uid: float(load) for uid, load in rows if uid is not None and load > capacities[uid]}
        if over:
            violations.append(over)
        samples += 1
        await asyncio.sleep(0.01)
    await rt.db.close()
    return samples, violations


async def _doubles(url: str, data_dir: str) -> tuple[int, int]:
    rt = Runtime.build(load_settings(data_dir=Path(data_dir), database_url=url, secret_key="bench-" + "x" * 40))
    await rt.db.start()
    async with rt.db.read() as s:
        routed = Counter((await s.execute(select(Transition.conversation_id).where(
            Transition.to_status == "assigned", Transition.actor_user_id.is_(None)))).scalars())
    await rt.db.close()
    return sum(1 for n in routed.values() if n > 1), sum(routed.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pg-url", default=os.environ.get("KOMMUTATOR_BENCH_PG_URL",
                                                       "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--conversations", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    url = args.pg_url.rsplit("/", 1)[0] + "/kommutator_bench_storm"
    with tempfile.TemporaryDirectory() as tmp:
        capacities = asyncio.run(_prepare(args.pg_url, url, args.agents, args.conversations, tmp))
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        started = time.monotonic()
        procs = [ctx.Process(target=storm, args=(url, f"{tmp}/p{i}", args.seconds, i, out))
                 for i in range(args.processes)]
        for p in procs:
            p.start()
        samples, violations = asyncio.run(_sampler(url, tmp, capacities, procs))
        elapsed = time.monotonic() - started
        counts = [out.get(timeout=10) for _ in procs]
        doubles, routed = asyncio.run(_doubles(url, tmp))
    result = {
        "target": "P7", "conversations": args.conversations, "agents": args.agents, "processes": args.processes,
        "seconds": round(elapsed, 1), "samples": samples, "capacity_violations": len(violations),
        "double_assignments": doubles, "assignments": routed,
        "passes": sum(c["passes"] for c in counts), "resolutions": sum(c["resolved"] for c in counts),
        "presence_changes": sum(c["presence"] for c in counts), "errors": sum(c["errors"] for c in counts),
    }
    result["assignments_per_second"] = round(routed / elapsed, 1)
    for k, v in result.items():
        print(f"{k:>22}: {v}")
    verdict = "PASS" if not violations and not doubles else "FAIL"
    print(f"P7 capacity violations / double assignments: {len(violations)} / {doubles} -> {verdict}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"storm-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
