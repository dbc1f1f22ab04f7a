"""Which process holds which work, and taking over at once the work of a process that died (docs/recovery.md).

Each server process registers in ``processes`` and heartbeats every ``heartbeat`` seconds. Work with a lease
names the process holding it (``claimed_by``: outbox sends, bot sessions; tables register here with
``register_claims``). A process whose heartbeat is older than ``dead_after`` seconds is dead: a survivor
releases its leases and removes its row, and the workers of every process take the work in their next pass —
seconds after a ``kill -9`` instead of when the lease runs out (the lease stays, for an owner nobody reaps).
A clean shutdown releases this process's leases itself, after its workers have stopped.

Timers and routing passes need no release: a timer is claimed in the transaction that carries out its effects,
and a routing pass is one transaction, so PostgreSQL rolls them back when the dead process's connection closes.

A survivor reaps only after its own heartbeats have gone through for ``dead_after`` seconds, so after an
outage of the database (every heartbeat stale at once) the others get a chance to beat again first. On
PostgreSQL the heartbeat runs in a thread of its own, with its own connection: a process whose event loop is
busy (a burst of traffic on a loaded machine held it for seconds in a test) still beats, and is not taken for
dead while it works.
Time is the database's (PostgreSQL's ``now()``): the processes' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from kommutator.db import Database, Tx
from kommutator.workers.base import BackgroundTask
from kommutator.workers.models import OutboxItem, Process

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

_processes = cast(Table, Process.__table__)
# Tables whose rows a process leases with ``claimed_by`` and ``claimed_until`` (released when it dies).
_claims: list[Table] = [cast(Table, OutboxItem.__table__)]


def register_claims(table: Table) -> None:
    """Release ``table``'s leases (its ``claimed_by``/``claimed_until``) when their process dies or stops."""
    if all(t is not table for t in _claims):
        _claims.append(table)


def new_name() -> str:
    """A name unique to this process: host, pid and a random part (a pid is reused after a restart)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:64]


def _db_now(tx: Tx) -> Any:
    """The database's clock on PostgreSQL (shared by all processes); this process's on SQLite (one process)."""
    return func.now() if tx.conn.dialect.name == "postgresql" else dt.datetime.now(dt.UTC)


async def do_release(tx: Tx, *, owners: list[str]) -> int:
    """Release every lease held by ``owners``; the number of rows released."""
    released = 0
    for table in _claims:
        result = await tx.conn.execute(
            table.update().where(table.c.claimed_by.in_(owners), table.c.claimed_until.is_not(None))
            .values(claimed_by=None, claimed_until=None))
        released += result.rowcount or 0
    return released


class Owners(BackgroundTask):
    """This process's row in ``processes``: registered, kept alive, and the reaper of dead processes' leases."""

    name_in_logs = "owners"

    def __init__(self, db: Database, *, heartbeat: float = 2.0, dead_after: float = 8.0,
                 name: str | None = None) -> None:
        super().__init__()
        self.db = db
        self.id = name or new_name()
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self._beating_since: float | None = None  # monotonic time since which every heartbeat went through
        self.reaped: list[str] = []  # processes this one found dead (tests, logs)
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    async def register(self, write: Any = None) -> None:
        """Insert (or refresh) this process's row."""
        async def job(tx: Tx) -> None:
            ts = _db_now(tx)
            moved = await tx.conn.execute(update(Process).where(Process.id == self.id).values(heartbeat_at=ts))
            if not moved.rowcount:
                await tx.conn.execute(insert(Process).values(
                    id=self.id, host=socket.gethostname()[:255], pid=os.getpid(), started_at=ts, heartbeat_at=ts))

        await (write or self.db.write)(job)

    async def beat(self, write: Any = None) -> None:
        """One heartbeat; if another process had declared this one dead (it was stalled for longer than
        ``dead_after``), its leases were released meanwhile: say so and register again."""
        async def job(tx: Tx) -> bool:
            moved = await tx.conn.execute(update(Process).where(Process.id == self.id)
                                          .values(heartbeat_at=_db_now(tx)))
            return bool(moved.rowcount)

        if not await (write or self.db.write)(job):
            if self._beating_since is not None:
                log.warning("process %s was taken for dead by another process (no heartbeat for %.0f s); its "
                            "leases were released and its work taken over; registering again", self.id,
                            self.dead_after)
            await self.register(write)
        if self._beating_since is None:
            self._beating_since = time.monotonic()

    async def reap(self, write: Any = None) -> list[str]:
        """Release the leases of processes whose heartbeat stopped; their names."""
        if self._beating_since is None or time.monotonic() - self._beating_since < self.dead_after:
            return []
        limit = dt.timedelta(seconds=self.dead_after)

        async def job(tx: Tx) -> tuple[list[str], int]:
            cutoff = _db_now(tx) - limit
            dead = list((await tx.conn.execute(
                select(Process.id).where(Process.heartbeat_at < cutoff, Process.id != self.id)
                .with_for_update(skip_locked=True))).scalars())
            if not dead:
                return [], 0
            released = await do_release(tx, owners=dead)
            await tx.conn.execute(delete(Process).where(Process.id.in_(dead)))
            return dead, released

        dead, released = await (write or self.db.write)(job)
        for name in dead:
            log.warning("process %s stopped heartbeating (more than %.0f s); its leases are released and taken over",
                        name, self.dead_after)
        if dead:
            log.warning("released %d leases of %d dead process(es)", released, len(dead))
            self.reaped += dead
        return dead

    async def _pass(self, write: Any = None) -> None:
        try:
            await self.beat(write)
            await self.reap(write)
        except Exception:
            self._beating_since = None
            log.warning("heartbeat failed (is the database reachable?); retrying in %.0f s", self.heartbeat,
                        exc_info=True)

    async def _loop(self) -> None:
        while True:
            await self._pass()
            await asyncio.sleep(self.heartbeat)

    def start(self) -> None:
        if self.db.is_sqlite:  # one process, one writer: the loop's own task
            super().start()
        elif self._thread is None:
            self._halt.clear()
            self._thread = threading.Thread(target=self._beat_in_thread, name="kommutator-heartbeat", daemon=True)
            self._thread.start()

    def _beat_in_thread(self) -> None:
        """Heartbeats on a loop and a connection of their own (PostgreSQL), until ``stop``."""
        loop = asyncio.new_event_loop()
        engine = create_async_engine(self.db.url, pool_size=1, max_overflow=0, pool_pre_ping=True)

        async def write(job: Callable[[Tx], Awaitable[T]]) -> T:
            async with engine.connect() as conn:
                await conn.begin()
                tx = Tx(conn)
                result = await job(tx)
                await tx.finish()
                await conn.commit()
                return result

        try:
            while not self._halt.is_set():
                loop.run_until_complete(self._pass(write))
                self._halt.wait(self.heartbeat)
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()

    async def stop(self) -> None:
        """Stop beating; release this process's leases and remove its row (a clean shutdown: no waiting)."""
        await super().stop()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._halt.set()
            await asyncio.to_thread(thread.join, 30)

        async def job(tx: Tx) -> int:
            released = await do_release(tx, owners=[self.id])
            await tx.conn.execute(delete(Process).where(Process.id == self.id))
            return released

        try:
            released = await self.db.write(job)
        except Exception:
            log.warning("could not release this process's leases at shutdown; others take them over when its "
                        "heartbeat is seen stopped", exc_info=True)
            return
        if released:
            log.info("released %d leases at shutdown", released)


def owners_of(rt: Runtime) -> Owners:
    """This runtime's process registration (made on first use)."""
    if rt.owners is None:
        rt.owners = Owners(rt.db)
    return rt.owners
