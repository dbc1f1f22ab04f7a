"""What keeping the report facts current costs the inbound path, in CPU per customer message.

``python bench/reports_cost.py`` (about 30 s): in one process, on a fresh SQLite database, customers write
through the generic API channel's webhook (the real intake, in-process ASGI) while the reporting worker is
subscribed. It measures the process CPU of the intake alone (the bus listener included: one set insertion per
event), then the CPU of the reporting worker's passes that bring those conversations' facts and rollups up to
date, and prints both per message and their ratio. Steady traffic is simulated as several messages per
conversation arriving within the worker's settle window, which one pass then covers.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from kommutator.app import create_app
from kommutator.config import load_settings
from kommutator.migrate import upgrade
from kommutator.reports.worker import reports_worker_of
from kommutator.runtime import Runtime


async def main(conversations: int, per_conversation: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/k.db"
        await upgrade(url)
        rt = Runtime.build(load_settings(data_dir=Path(tmp) / "d", database_url=url, secret_key="s" * 48))
        await rt.db.start()
        app = create_app(runtime=rt)
        from kommutator.auth.principal import Principal
        from kommutator.channels.actions import do_create_channel
        from kommutator.channels.schemas import ChannelCreate

        admin = Principal(user_id=0, name="bench", role="admin", team_ids=frozenset())
        made = await rt.db.write(lambda tx: do_create_channel(tx, admin, ChannelCreate(type="api", name="CRM"),
                                                              rt.box))
        channel_id, token = made[0].id, made[1]["inbound_token"]
        worker = reports_worker_of(rt)
        n = 0
        intake_cpu = worker_cpu = 0.0
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for r in range(rounds):
                c0 = time.process_time()
                for i in range(per_conversation):
                    for c in range(conversations):
                        n += 1
                        body = {"id": f"m{n}", "contact": {"id": f"c{c}", "name": f"C {c}"},
                                "text": f"message {i} of round {r}"}
                        resp = await client.post(f"/webhooks/{channel_id}",
                                                 headers={"Authorization": f"Bearer {token}"}, json=body)
                        assert resp.status_code == 200, resp.text
                c1 = time.process_time()
                await worker.drain()
                c2 = time.process_time()
                intake_cpu += c1 - c0
                worker_cpu += c2 - c1
        await rt.db.close()
    print(f"messages {n}, conversations {conversations}, {per_conversation} messages each per pass, {rounds} passes")
    print(f"intake CPU per message          {1000 * intake_cpu / n:7.3f} ms (the bus listener included)")
    print(f"reports worker CPU per message  {1000 * worker_cpu / n:7.3f} ms")
    print(f"ratio                           {100 * worker_cpu / intake_cpu:7.1f} %")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--per-conversation", type=int, default=5, help="messages per conversation per worker pass")
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args()
    asyncio.run(main(a.conversations, a.per_conversation, a.rounds))
