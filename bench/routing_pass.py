"""A routing pass against the database with many agents online: the index rebuilt each pass vs kept between them.

``python bench/routing_pass.py --agents 10000 --passes 20`` makes a throw-away SQLite database (``--url`` for
another), 10,000 online agents with 2-4 of 20 skills and one of 5 teams, and one waiting conversation nobody can
take (so every pass loads the index and decides once), then times passes: ``do_route`` building the index from
the database (as every pass did before) and the router's pass with the index kept alive (``LiveIndex``: agents'
rows and loads re-read, skills and teams kept). Prints the median wall and CPU time per pass of each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from kommutator.agents.models import Skill, Team, TeamMember, User, UserSkill
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation
from kommutator.db import Database, Tx
from kommutator.events import InProcessBus
from kommutator.migrate import upgrade
from kommutator.routing.service import LiveIndex, do_route


async def seed(db: Database, agents: int) -> None:
    rnd = random.Random(1)
    ts = now()

    async def job(tx: Tx) -> None:
        c = tx.conn
        await c.execute(insert(Skill), [{"name": f"skill{i}", "description": ""} for i in range(20)])
        await c.execute(insert(Team), [{"name": f"team{i}", "description": ""} for i in range(6)])
        await c.execute(insert(User), [{"email": f"a{i}@bench.test", "name": f"Agent {i}", "role": "agent",
                                        "capacity": rnd.randint(3, 8), "presence": "online",
                                        "presence_changed_at": ts, "channel_weights": {}, "active": True,
                                        "created_at": ts, "updated_at": ts, "locale": "en"}
                                       for i in range(agents)])
        await c.execute(insert(UserSkill), [
            {"user_id": u + 1, "skill_id": s, "level": rnd.randint(1, 5)}
            for u in range(agents) for s in rnd.sample(range(1, 21), rnd.randint(2, 4))])
        await c.execute(insert(TeamMember), [{"user_id": u + 1, "team_id": rnd.randint(1, 5)} for u in range(agents)])
        contact = (await c.execute(insert(Contact).values(name="Waiting", created_at=ts, updated_at=ts)
                                   .returning(Contact.id))).scalar_one()
        # Needs team 6, which no agent is in: examined on every pass, never assigned.
        await c.execute(insert(Conversation).values(contact_id=contact, status="queued", queued_at=ts, team_id=6,
                                                    subject="", created_at=ts, updated_at=ts))

    await db.write(job)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--agents", type=int, default=10000)
    p.add_argument("--passes", type=int, default=20)
    p.add_argument("--url", default="")
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="routing-pass-"))
    url = args.url or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    await upgrade(url)
    db = Database(url, bus=InProcessBus())
    await db.start()
    try:
        await seed(db, args.agents)
        live = LiveIndex(resync=1e9)
        for name, job in (("rebuilt each pass", do_route),
                          ("kept between passes", lambda tx: do_route(tx, live=live))):
            walls, cpus = [], []
            for _ in range(args.passes + 1):
                t, c = time.perf_counter(), time.thread_time()
                await db.write(job)
                walls.append(time.perf_counter() - t)
                cpus.append(time.thread_time() - c)
            walls, cpus = walls[1:], cpus[1:]  # the first builds the kept index; count steady passes
            print(f"{name:<22} {args.agents} agents: median {statistics.median(walls) * 1000:7.1f} ms wall, "
                  f"{statistics.median(cpus) * 1000:7.1f} ms CPU per pass")
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
