"""Recovery (docs/recovery.md): the leases of a process whose heartbeat stopped are released at once and a clean
stop releases its own; requests answer 503 ``database_unavailable`` while the database cannot be reached and go
through again once it can; intake, bot steps and routing running together on PostgreSQL never deadlock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from kommutator.agents.models import User
from kommutator.app import create_app
from kommutator.bot import setup as bot_setup
from kommutator.bot.models import BotSession
from kommutator.bot.worker import bot_worker_of
from kommutator.channels.base import SendResult
from kommutator.clock import now
from kommutator.config import load_settings
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.migrate import upgrade
from kommutator.routing.service import router_of
from kommutator.runtime import Runtime
from kommutator.workers.models import OutboxItem, Process
from kommutator.workers.outbox import OutboxWorker, do_record_outcome
from kommutator.workers.owners import Owners
from kommutator.workers.retry import RetryPolicy

from .bot_helpers import attach_flow
from .conftest import PG_URL, Factory, post_inbound
from .fakes.crm import FakeCrm
from .live_server import free_port


async def _lease(rt: Runtime, *, owner: str, key: str) -> int:
    """An outbox item leased by ``owner`` for five minutes."""
    async def job(tx: Tx) -> int:
        item = OutboxItem(kind="message", ordering_key=key, payload={}, claimed_by=owner,
                          claimed_until=now() + dt.timedelta(minutes=5))
        tx.session.add(item)
        await tx.session.flush()
        return item.id

    return await rt.db.write(job)


async def _claims(rt: Runtime) -> dict[int, str | None]:
    async with rt.db.read() as s:
        return {i: by for i, by in (await s.execute(select(OutboxItem.id, OutboxItem.claimed_by)
                                                    .where(OutboxItem.claimed_until.is_not(None)))).all()}


async def _age(rt: Runtime, name: str, seconds: float) -> None:
    """Make ``name``'s last heartbeat ``seconds`` old (as if it had stopped beating then)."""
    async def job(tx: Tx) -> None:
        db_now = func.now() if tx.conn.dialect.name == "postgresql" else dt.datetime.now(dt.UTC)
        await tx.conn.execute(update(Process).where(Process.id == name)
                              .values(heartbeat_at=db_now - dt.timedelta(seconds=seconds)))

    await rt.db.write(job)


async def _registered(rt: Runtime) -> set[str]:
    async with rt.db.read() as s:
        return set((await s.execute(select(Process.id))).scalars())


async def test_a_dead_process_leases_are_released_by_a_survivor_at_once(runtime: Runtime) -> None:
    dead, alive = Owners(runtime.db, name="dead-one"), Owners(runtime.db, name="alive-one", dead_after=6.0)
    await dead.register()
    await alive.beat()
    mine = await _lease(runtime, owner="alive-one", key="a")
    theirs = await _lease(runtime, owner="dead-one", key="b")

    await _age(runtime, "dead-one", 60)
    assert await alive.reap() == [], "a process that has just started beating must not reap yet"
    alive._beating_since = time.monotonic() - 60  # it has been beating for a minute
    assert await alive.reap() == ["dead-one"]

    assert await _claims(runtime) == {mine: "alive-one"}, "only the dead process's lease is released"
    assert await _registered(runtime) == {"alive-one"}
    async with runtime.db.read() as s:
        item = await s.get(OutboxItem, theirs)
        assert item is not None and item.claimed_by is None and item.status == "pending"
    # A live process is never reaped.
    assert await alive.reap() == []


async def test_a_dead_process_bot_lease_is_released(runtime: Runtime) -> None:
    async def job(tx: Tx) -> int:
        contact = Contact(name="Someone")
        tx.session.add(contact)
        await tx.session.flush()
        contact_conv = Conversation(contact_id=contact.id, status="bot")
        tx.session.add(contact_conv)
        await tx.session.flush()
        tx.session.add(BotSession(conversation_id=contact_conv.id, flow_id=None, flow_version=1, status="active",
                                  due_at=now(), claimed_until=now() + dt.timedelta(seconds=90),
                                  claimed_by="dead-two"))
        return contact_conv.id

    bot_setup.register_all()  # registers the bot's leases, as app.py does at start-up
    conv_id = await runtime.db.write(job)
    survivor = Owners(runtime.db, name="survivor")
    await Owners(runtime.db, name="dead-two").register()
    await survivor.beat()
    survivor._beating_since = time.monotonic() - 60
    await _age(runtime, "dead-two", 60)
    assert await survivor.reap() == ["dead-two"]
    async with runtime.db.read() as s:
        session = await s.get(BotSession, conv_id)
        assert session is not None and session.claimed_until is None and session.claimed_by is None


async def test_a_clean_stop_releases_the_process_leases(runtime: Runtime) -> None:
    owners = Owners(runtime.db, name="stopping", heartbeat=0.05)
    owners.start()
    deadline = time.monotonic() + 30
    while "stopping" not in await _registered(runtime):
        assert time.monotonic() < deadline, "the process never registered"
        await asyncio.sleep(0.05)
    item = await _lease(runtime, owner="stopping", key="c")
    other = await _lease(runtime, owner="someone-else", key="d")
    await owners.stop()
    assert await _claims(runtime) == {other: "someone-else"}, f"item {item} should have been released at the stop"
    assert "stopping" not in await _registered(runtime)


async def test_a_process_taken_for_dead_registers_again(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    owners = Owners(runtime.db, name="stalled")
    await owners.beat()
    async def forget(tx: Tx) -> None:
        await tx.conn.execute(Process.__table__.delete().where(Process.id == "stalled"))

    await runtime.db.write(forget)
    with caplog.at_level(logging.WARNING):
        await owners.beat()
    assert "stalled" in await _registered(runtime)
    assert "taken for dead" in caplog.text


async def test_the_outbox_and_bot_worker_lease_in_the_process_name(runtime: Runtime) -> None:
    create_app(runtime=runtime)
    assert runtime.owners is not None
    assert bot_worker_of(runtime).owner == runtime.owners.id
    worker = OutboxWorker(runtime, name=runtime.owners.id)
    assert worker.name == runtime.owners.id


# --- The database unreachable ------------------------------------------------------------------------------

async def test_requests_answer_503_while_the_database_is_unreachable(tmp_path: Any) -> None:
    port = free_port()  # nothing listens there: the database "is down"
    settings = load_settings(data_dir=tmp_path / "data", database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x",
                             secret_key="test-secret-key-" + "x" * 32, public_base_url="http://testserver")
    rt = Runtime.build(settings)
    await rt.db.start()
    try:
        app = create_app(runtime=rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            webhook = await c.post("/webhooks/1", json={"id": "m1", "contact": {"id": "x"}, "text": "hi"},
                                   headers={"Authorization": "Bearer whatever"})
            api = await c.get("/api/v1/conversations", headers={"Authorization": "Bearer kmt_whatever"})
        for r in (webhook, api):
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["code"] == "database_unavailable" and "stored" in body["detail"], body
            assert r.headers["retry-after"] == "5"
    finally:
        await rt.db.close()


@pytest.mark.skipif(not PG_URL, reason="connections to a PostgreSQL server")
async def test_writes_go_through_after_the_server_dropped_every_connection(
        client: httpx.AsyncClient, api_channel: dict[str, Any], runtime: Runtime) -> None:
    """pg_terminate_backend on this test's own database (never the shared server's other databases): the pooled
    connections are dead; the next webhooks are stored, none twice, nothing lost."""
    ok = 0
    for n in range(3):
        r = await post_inbound(client, api_channel, msg_id=f"before-{n}", contact=f"c{n}")
        assert r.status_code == 200, r.text
        ok += 1
    admin = create_async_engine(runtime.settings.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        killed = (await conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).scalar()
    await admin.dispose()
    assert killed, "the test's pooled connections should have been terminated"
    answers = []
    for n in range(10):
        r = await post_inbound(client, api_channel, msg_id=f"after-{n}", contact=f"c{n % 3}")
        answers.append(r.status_code)
        if r.status_code != 200:
            assert r.json()["code"] == "database_unavailable", r.text
    assert answers.count(200) >= 9, f"the server should reconnect at once: {answers}"
    async with runtime.db.read() as s:
        stored = (await s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")))
    assert stored == ok + answers.count(200)


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temporary folder, on a free port), to stop and start
    again: the shared server is never touched. Run as the ``postgres`` user when the tests run as root."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        assert self.bin is not None
        # Not under pytest's temporary folder, which only root may enter.
        self.folder = Path(tempfile.mkdtemp(prefix="kommutator-pg-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.data.parent, "postgres")
            os.chmod(self.data.parent, 0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.mark.skipif(_pg_bin() is None or shutil.which("runuser") is None, reason="needs PostgreSQL's server binaries")
async def test_a_restarted_postgresql_answers_503_meanwhile_and_the_server_reconnects(tmp_path: Path) -> None:
    pg = PrivatePostgres()
    pg.init()
    pg.start()
    try:
        await upgrade(pg.url)
        settings = load_settings(data_dir=tmp_path / "data", database_url=pg.url,
                                 secret_key="test-secret-key-" + "x" * 32, public_base_url="http://testserver")
        rt = Runtime.build(settings)
        await rt.db.start()
        try:
            app = create_app(runtime=rt)
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                admin = await Factory(rt).user("admin")
                r = await c.post("/api/v1/channels", json={"type": "api", "name": "CRM"}, headers=admin.headers)
                assert r.status_code == 201, r.text
                channel = r.json()
                answers: dict[str, int] = {}

                async def send(msg_id: str) -> int:
                    resp = await post_inbound(c, channel, msg_id=msg_id, contact="someone")
                    answers[msg_id] = resp.status_code
                    if resp.status_code != 200:
                        assert resp.status_code == 503 and resp.json()["code"] == "database_unavailable", resp.text
                    return resp.status_code

                assert await send("before") == 200
                pg.stop()
                for n in range(3):
                    assert await send(f"down-{n}") == 503
                api = await c.get("/api/v1/conversations", headers=admin.headers)
                assert api.status_code == 503 and api.json()["code"] == "database_unavailable", api.text
                pg.start()
                deadline = time.monotonic() + 60
                n = 0
                while await send(f"back-{n}") != 200:
                    assert time.monotonic() < deadline, "the server did not reconnect to PostgreSQL"
                    n += 1
                    await asyncio.sleep(0.2)
                for m in range(5):
                    assert await send(f"after-{m}") == 200
            async with rt.db.read() as s:
                stored = set((await s.execute(select(Message.provider_message_id)
                                              .where(Message.direction == "in"))).scalars())
            assert stored == {m for m, status in answers.items() if status == 200}, \
                "exactly the webhooks answered 200 are stored: nothing half-stored while the database was down"
        finally:
            await rt.db.close()
    finally:
        with contextlib.suppress(Exception):
            pg.stop()
        shutil.rmtree(pg.folder, ignore_errors=True)


# --- No deadlocks ------------------------------------------------------------------------------------------

@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    settings.outbound_allow_hosts = ["127.0.0.1"]  # the fake CRM is on loopback
    return settings


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    fake = FakeCrm()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.mark.skipif(not PG_URL, reason="row locks and deadlocks are PostgreSQL's (SQLite has one writer)")
async def test_intake_bot_and_routing_together_never_deadlock(
        client: httpx.AsyncClient, admin: Any, runtime: Runtime, factory: Factory, crm: FakeCrm,
        caplog: pytest.LogCaptureFixture) -> None:
    # Two channels of one type: the same customers write on both, so one contact's messages land in one
    # conversation, served by the bot (a flow on the first channel) or queued for the agents (the second).
    channels = []
    for name in ("With bot", "Without bot"):
        r = await client.post("/api/v1/channels", headers=admin.headers, json={
            "type": "api", "name": name, "settings": {"outbound_url": crm.inbox}})
        assert r.status_code == 201, r.text
        channels.append(r.json())
    await attach_flow(client, admin, channels[0]["id"], f"{crm.url}/crm")
    agents = [(await factory.user("agent", name=f"Agent {n}")).id for n in range(4)]

    async def online(tx: Tx) -> None:
        await tx.conn.execute(update(User).where(User.id.in_(agents)).values(presence="online", capacity=3))

    await runtime.db.write(online)

    bot, router = bot_worker_of(runtime), router_of(runtime)
    stop = asyncio.Event()
    errors: list[str] = []

    async def keep(run: Any) -> int:
        passes = 0
        while not stop.is_set():
            try:
                await run()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            passes += 1
            await asyncio.sleep(0)
        return passes

    contacts = [f"customer-{n}" for n in range(8)]
    answers: dict[str, int] = {}

    async def customer(who: str, index: int) -> None:
        for m in range(12):
            msg_id = f"{who}-{m}"
            r = await post_inbound(client, channels[(index + m) % 2], msg_id=msg_id, contact=who,
                                   text=["hello", "2", "I need a person", "12345"][m % 4])
            answers[msg_id] = r.status_code

    workers = [asyncio.create_task(keep(bot.run_due)), asyncio.create_task(keep(bot.run_due)),
               asyncio.create_task(keep(router.run_pass)), asyncio.create_task(keep(router.run_pass))]
    with caplog.at_level(logging.ERROR):
        await asyncio.gather(*(customer(who, i) for i, who in enumerate(contacts)))
        stop.set()
        passes = await asyncio.gather(*workers)
    deadlocks = [e for e in errors if "deadlock" in e.lower()] + \
        [r.getMessage() for r in caplog.records if "deadlock" in (r.getMessage() + str(r.exc_info)).lower()]
    assert not deadlocks, f"deadlocks: {deadlocks[:3]}"
    assert not errors, f"the workers failed: {errors[:3]}"
    assert all(p > 0 for p in passes)
    ok = {m for m, status in answers.items() if status == 200}
    assert len(ok) == len(answers), f"every webhook should be answered 200: {[s for s in answers.values() if s != 200]}"
    async with runtime.db.read() as s:
        stored = list((await s.execute(select(Message.provider_message_id).where(Message.direction == "in"))).scalars())
    assert sorted(stored) == sorted(ok), "stored messages must be exactly the webhooks answered 200"


async def test_a_send_finished_after_its_lease_was_released_is_recorded_not_sent_again(runtime: Runtime) -> None:
    """A process taken for dead while it was only slow: its lease was released; if nobody claimed the item since,
    the outcome it reports is recorded (no second send); if another process has it now, the new claimant's is."""
    released = await _lease(runtime, owner="slow-one", key="e")
    taken = await _lease(runtime, owner="someone-else", key="f")

    async def release(tx: Tx) -> None:
        await tx.conn.execute(update(OutboxItem).where(OutboxItem.id == released)
                              .values(claimed_by=None, claimed_until=None))

    await runtime.db.write(release)

    async def record(item_id: int) -> bool:
        async def job(tx: Tx) -> bool:
            return await do_record_outcome(tx, item_id=item_id, worker="slow-one",
                                           outcome=SendResult(provider_message_id=None), policy=RetryPolicy())

        return await runtime.db.write(job)

    assert await record(released) is True
    assert await record(taken) is False
    async with runtime.db.read() as s:
        assert (await s.get(OutboxItem, released)).status == "done"  # type: ignore[union-attr]
        assert (await s.get(OutboxItem, taken)).status == "pending"  # type: ignore[union-attr]
