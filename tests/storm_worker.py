"""One server process of the assignment storm (tests/test_routing_storm.py): its own runtime on the shared
PostgreSQL database, running routing passes, resolving conversations and flipping agents' presence at
random, as the agents and routers of a busy floor would."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from sqlalchemy import func, select

from kommutator.agents.actions import do_update_user
from kommutator.agents.models import User
from kommutator.agents.schemas import UserUpdate
from kommutator.auth.principal import Principal
from kommutator.config import load_settings
from kommutator.conversations.actions import do_set_status
from kommutator.conversations.models import Conversation
from kommutator.conversations.schemas import StatusRequest
from kommutator.db import Tx
from kommutator.routing.service import Router
from kommutator.runtime import Runtime

SUPERVISOR = Principal(user_id=0, name="storm", role="admin", team_ids=frozenset())


MIN_ASSIGNMENTS = 200  # what tests/test_routing_storm.py asks of all processes together


async def _storm(database_url: str, data_dir: str, seconds: float, seed: int, processes: int) -> dict[str, int]:
    settings = load_settings(data_dir=Path(data_dir), database_url=database_url,
                             secret_key="test-secret-key-" + "x" * 32, public_base_url="http://testserver")
    rt = Runtime.build(settings)
    await rt.db.start()
    router = Router(rt)
    rng = random.Random(seed)
    counts = {"passes": 0, "assigned": 0, "resolved": 0, "presence": 0, "errors": 0}
    end = time.monotonic() + seconds
    # A slow machine gets more time instead of a smaller storm: each process goes on past `seconds` until it
    # has made its share of the test's minimum of assignments (at most two more minutes).
    share, give_up = MIN_ASSIGNMENTS // processes + 1, end + 120
    try:
        while time.monotonic() < end or (counts["assigned"] < share and time.monotonic() < give_up):
            op = rng.random()
            try:
                if op < 0.35:
                    result = await router.run_pass()
                    counts["passes"] += 1
                    counts["assigned"] += len(result.assigned)
                elif op < 0.88:
                    async with rt.db.read() as s:
                        conv_id = await s.scalar(select(Conversation.id).where(Conversation.status == "assigned")
                                                 .order_by(func.random()).limit(1))
                    if conv_id is not None:
                        async def resolve(tx: Tx, cid: int = conv_id) -> None:
                            await do_set_status(tx, SUPERVISOR, cid, StatusRequest(status="resolved"))

                        await rt.db.write(resolve)
                        counts["resolved"] += 1
                else:
                    async with rt.db.read() as s:
                        user_id = await s.scalar(select(User.id).where(User.role == "agent")
                                                 .order_by(func.random()).limit(1))
                    if user_id is not None:
                        presence = rng.choice(["online", "online", "away"])

                        async def flip(tx: Tx, uid: int = user_id, p: str = presence) -> None:
                            await do_update_user(tx, SUPERVISOR, uid, UserUpdate(presence=p))  # type: ignore[arg-type]

                        await rt.db.write(flip)
                        counts["presence"] += 1
            except Exception:
                counts["errors"] += 1
        # Finish: everyone online, route what is left.
        for _ in range(20):
            result = await router.run_pass()
            counts["assigned"] += len(result.assigned)
    finally:
        await rt.db.close()
    return counts


def storm(database_url: str, data_dir: str, seconds: float, seed: int, processes: int, out: object) -> None:
    counts = asyncio.run(_storm(database_url, data_dir, seconds, seed, processes))
    out.put(counts)  # type: ignore[attr-defined]
