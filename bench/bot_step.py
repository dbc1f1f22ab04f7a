"""CPU per bot step, in process: the default flow greeting N new conversations, then answering each once.

``python bench/bot_step.py [--n 300]`` seeds a throw-away SQLite database (or ``--url`` PostgreSQL) with an API
channel carrying the default flow, lets N customers write, and runs the bot worker's steps one by one. It prints
the process CPU per step: whole steps (claim and read, compute, apply) and the apply transaction alone. The
numbers are for comparing one version of the code with another on the same machine, not absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from kommutator.app import register_all
from kommutator.bot.flow import load_default
from kommutator.bot.models import BotFlow, BotFlowChannel, BotFlowVersion
from kommutator.bot.worker import BotWorker
from kommutator.channels.base import ChannelConfig, InboundMessage, InboundSender
from kommutator.channels.models import Channel
from kommutator.config import load_settings
from kommutator.conversations.inbound import do_receive_message
from kommutator.db import Tx
from kommutator.migrate import upgrade
from kommutator.runtime import Runtime


async def _seed(rt: Runtime) -> ChannelConfig:
    async def job(tx: Tx) -> ChannelConfig:
        ch = Channel(type="api", name="Bench", settings={"outbound_url": "http://127.0.0.1:9/none"}, enabled=True)
        tx.session.add(ch)
        defn = load_default()
        flow = BotFlow(name="Bench", definition=defn, version=1)
        tx.session.add(flow)
        await tx.session.flush()
        tx.session.add_all([BotFlowVersion(flow_id=flow.id, version=1, definition=defn),
                            BotFlowChannel(channel_id=ch.id, flow_id=flow.id)])
        return ChannelConfig(id=ch.id, type="api", name="Bench", settings=dict(ch.settings), credentials={},
                             enabled=True)
    return await rt.db.write(job)


async def _write(rt: Runtime, channel: ChannelConfig, who: int, n: int, text: str) -> int:
    msg = InboundMessage(event_id=f"e{who}-{n}", sender=InboundSender(external_id=f"c{who}", name=f"Customer {who}"),
                         text=text, provider_message_id=f"m{who}-{n}")
    got = await rt.db.write(lambda tx: do_receive_message(tx, channel=channel, msg=msg))
    return got.conversation_id


async def _steps(worker: BotWorker, rt: Runtime, ids: list[int]) -> tuple[list[float], list[float]]:
    """CPU ms of each whole step and of each apply transaction."""
    from kommutator.bot.apply import do_apply_step

    whole: list[float] = []
    applies: list[float] = []
    for cid in ids:
        t0 = time.process_time()
        work = await rt.db.write(lambda tx, c=cid: worker._take(tx, c, claim=True))  # type: ignore[misc]
        assert work is not None, f"conversation {cid} has no bot work"
        step = await worker.compute(work)
        t1 = time.process_time()
        await rt.db.write(lambda tx, s=step: do_apply_step(tx, s))  # type: ignore[misc]
        t2 = time.process_time()
        whole.append((t2 - t0) * 1000)
        applies.append((t2 - t1) * 1000)
    return whole, applies


async def main(n: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(url)
        rt = Runtime.build(load_settings(data_dir=Path(tmp), database_url=url, secret_key="bench-" + "x" * 40))
        await rt.db.start()
        register_all()  # what app.py does at start: the bot hooks into the intake
        try:
            channel = await _seed(rt)
            worker = BotWorker(rt)
            ids = [await _write(rt, channel, i, 0, "Здравствуйте") for i in range(n)]
            greet, greet_apply = await _steps(worker, rt, ids)
            for i in range(n):
                await _write(rt, channel, i, 1, "1")
            answer, answer_apply = await _steps(worker, rt, ids)
            await worker.stop()
        finally:
            await rt.db.close()
    for name, whole, apply in (("greeting", greet, greet_apply), ("answer", answer, answer_apply)):
        print(f"{name:9} n={len(whole)}  CPU per step: whole {statistics.mean(whole):.2f} ms "
              f"(median {statistics.median(whole):.2f}), apply {statistics.mean(apply):.2f} ms "
              f"(median {statistics.median(apply):.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--url", default=None, help="a database URL (default: a throw-away SQLite file)")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.url))
