"""Three `kommutator serve` processes on one PostgreSQL database, one killed with `kill -9` under load
(docs/recovery.md): the others go on answering webhooks, take over the dead one's leased sends and bot steps
within seconds (long before its 5-minute lease would run out), and every webhook answered 200 is stored once.

Nothing here waits for a fixed time: each step polls for what it needs with a generous deadline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kommutator.bot.models import BotSession
from kommutator.conversations.models import Message
from kommutator.runtime import Runtime
from kommutator.workers.models import OutboxItem, Process

from .bot_helpers import attach_flow
from .conftest import PG_URL, Actor
from .fakes.crm import FakeCrm
from .fakes.serving import Served
from .live_server import free_port

pytestmark = pytest.mark.skipif(not PG_URL, reason="several server processes share a database only on PostgreSQL")

SECRET = "test-secret-key-" + "x" * 32  # the conftest's: the processes decrypt the channel's credentials with it
TAKEOVER_DEADLINE = 120.0  # seconds; generous for a loaded machine, and still far below the 5-minute lease


class SlowInbox:
    """The integrator's endpoint for the API channel's replies: answers after ``delay`` seconds, so that sends
    are in flight (leased) when a process is killed; counts each webhook-id it received."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.received: dict[str, int] = {}
        self.url = ""
        self._http = Served()

    async def _inbox(self, request: Request) -> JSONResponse:
        await request.body()
        await asyncio.sleep(self.delay)
        key = request.headers.get("webhook-id", "")
        self.received[key] = self.received.get(key, 0) + 1
        return JSONResponse({"id": f"inbox-{key}"})

    async def start(self) -> None:
        self.url = await self._http.start(Starlette(routes=[Route("/inbox", self._inbox, methods=["POST"])]))

    async def stop(self) -> None:
        await self._http.stop()


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]
    return settings


@pytest.fixture
async def inbox() -> AsyncIterator[SlowInbox]:
    fake = SlowInbox()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


def _start(database_url: str, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KOMMUTATOR_DATABASE_URL": database_url, "KOMMUTATOR_SECRET_KEY": SECRET,
           "KOMMUTATOR_OUTBOUND_ALLOW_HOSTS": "127.0.0.1", "KOMMUTATOR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    env.pop("KOMMUTATOR_TEST_DATABASE_URL", None)
    with open(data_dir.parent / f"server-{port}.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "kommutator.cli", "serve", "--port", str(port),
                                 "--data-dir", str(data_dir)], env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    started = []
    for n in range(3):
        port = free_port()
        started.append((_start(database_url, tmp_path / f"data-{n}", port), f"http://127.0.0.1:{port}"))
    yield started
    for proc, _ in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc, _ in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _until(what: str, check: Any, deadline: float = TAKEOVER_DEADLINE) -> float:
    """Poll ``check()`` until it is true; the seconds it took."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < deadline, f"gave up waiting for {what} after {deadline:.0f} s"
        await asyncio.sleep(0.2)
    return time.monotonic() - start


async def test_killing_one_of_three_processes_under_load_loses_nothing_and_its_work_is_taken_over(
        client: httpx.AsyncClient, admin: Actor, runtime: Runtime, inbox: SlowInbox, crm: FakeCrm,
        servers: list[tuple[subprocess.Popen[bytes], str]], tmp_path: Path) -> None:
    r = await client.post("/api/v1/channels", headers=admin.headers, json={
        "type": "api", "name": "Website", "settings": {"outbound_url": f"{inbox.url}/inbox"}})
    assert r.status_code == 201, r.text
    channel = r.json()
    await attach_flow(client, admin, channel["id"], f"{crm.url}/crm")  # the bot answers every message
    token = channel["generated_credentials"]["inbound_token"]

    async def registered() -> set[int]:
        async with runtime.db.read() as s:
            return {int(p.split(":")[1]) for p in (await s.execute(select(Process.id))).scalars()}

    pids = [proc.pid for proc, _ in servers]

    async def all_up() -> bool:
        if any(proc.poll() is not None for proc, _ in servers):
            logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in tmp_path.glob("server-*.log"))
            raise AssertionError(f"a server exited at start:\n{logs}")
        return set(pids) <= await registered()

    await _until("the three processes to register", all_up)
    victim = servers[0][0]
    customers, messages = 10, 30

    answered: dict[str, int] = {}

    async def customer(n: int, http: httpx.AsyncClient) -> None:
        for m in range(messages):
            msg_id = f"c{n}-m{m}"
            body = {"id": msg_id, "contact": {"id": f"customer-{n}", "name": f"Customer {n}"},
                    "text": ["hello", "1", "2", "3"][m % 4]}
            # Like a provider: a request that gets no 200 is sent again (to any process) until one answers 200.
            for attempt in range(30):
                _, url = servers[(n + m + attempt) % 3]
                try:
                    resp = await http.post(f"{url}/webhooks/{channel['id']}", json=body,
                                           headers={"Authorization": f"Bearer {token}"})
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
                    continue
                if resp.status_code == 200:
                    answered[msg_id] = answered.get(msg_id, 0) + 1
                    break
                await asyncio.sleep(0.1)

    async def victim_holds_work() -> bool:
        async with runtime.db.read() as s:
            held = await s.scalar(select(func.count()).select_from(OutboxItem).where(
                OutboxItem.claimed_by.like(f"%:{victim.pid}:%"), OutboxItem.claimed_until.is_not(None)))
        return bool(held)

    async with httpx.AsyncClient(timeout=30) as http:
        load = asyncio.gather(*(customer(n, http) for n in range(customers)))
        await _until("the victim to hold some sends", victim_holds_work)
        async with runtime.db.read() as s:
            held_items = set((await s.execute(select(OutboxItem.id).where(
                OutboxItem.claimed_by.like(f"%:{victim.pid}:%"), OutboxItem.claimed_until.is_not(None)))).scalars())
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=30)

        async def reaped() -> bool:
            return victim.pid not in await registered()

        await _until("a survivor to find the dead process", reaped)
        found_dead = time.monotonic() - killed_at

        async def taken_over() -> bool:
            async with runtime.db.read() as s:
                left = await s.scalar(select(func.count()).select_from(OutboxItem).where(
                    OutboxItem.id.in_(held_items), OutboxItem.status == "pending"))
            return left == 0

        await _until("the dead process's sends to be taken over", taken_over)
        takeover = time.monotonic() - killed_at
        await load

    async def all_served() -> bool:
        async with runtime.db.read() as s:
            pending = await s.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending"))
            due = await s.scalar(select(func.count()).select_from(BotSession).where(
                BotSession.status == "active", BotSession.due_at.is_not(None)))
        return pending == 0 and due == 0

    await _until("every reply and bot step to be done", all_served)
    assert victim.pid not in await registered(), "the dead process should have been taken for dead and removed"
    assert all(proc.poll() is None for proc, _ in servers[1:]), "the survivors must still run"

    async with runtime.db.read() as s:
        stored = list((await s.execute(select(Message.provider_message_id).where(
            Message.direction == "in"))).scalars())
        sent = await s.scalar(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "done"))
    assert len(stored) == len(set(stored)), "no webhook may be stored twice"
    missing = set(answered) - set(stored)
    assert not missing, f"webhooks answered 200 but not stored: {sorted(missing)[:5]}"
    assert len(answered) == customers * messages, "every customer message should be answered 200 by some process"
    # A reply is delivered twice only if the dead process had it on the wire when it was killed.
    doubled = {key for key, times in inbox.received.items() if times > 1}
    assert len(doubled) <= len(held_items), f"more repeats ({len(doubled)}) than sends the victim held"
    report = {"webhooks_200": len(answered), "stored": len(stored), "replies_sent": sent,
              "victim_held": len(held_items), "found_dead_seconds": round(found_dead, 1),
              "takeover_seconds": round(takeover, 1),
              "repeated_deliveries": len(doubled)}
    print("process fault:", json.dumps(report))
    assert takeover < TAKEOVER_DEADLINE
