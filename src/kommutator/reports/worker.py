"""The reporting worker: keeps each conversation's fact row and the hourly rollups current.

The bus listener costs the inbound path one set insertion: it notes the conversation and wakes the worker.
The worker waits ``settle`` seconds so that one customer message's several events (the message, the bot's
answer, the routing change) cost one pass, reads the noted conversations' history on a read connection
(not holding the single SQLite writer) and stores up to ``chunk`` facts plus their hours' rollups in one
short write transaction. Facts are derived from history, so a pass is idempotent; what the events do not
announce (an SLA clock the monitor closes, a bot session's outcome) and whatever a restart lost is found by
the catch-up sweep, which looks for conversations whose history changed since the facts were last computed.
On PostgreSQL several processes may run this worker: each write takes the report writers' advisory lock
(``reports/actions.py``), so they take turns and never count a change twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
from typing import Any

from sqlalchemy import func, select

from kommutator.clock import now
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.events import (
    AgentChanged,
    ConversationCreated,
    ConversationUpdated,
    Event,
    IntentHeard,
    MessageCreated,
    RatingRecorded,
)
from kommutator.reports.actions import changed_since_filter, do_record_presence, do_store_facts
from kommutator.reports.facts import load_facts
from kommutator.reports.models import ReportFact
from kommutator.runtime import Runtime
from kommutator.workers.base import BackgroundTask

log = logging.getLogger(__name__)

KINDS = (MessageCreated, ConversationCreated, ConversationUpdated, RatingRecorded, IntentHeard)


class ReportsWorker(BackgroundTask):
    """Recompute the facts of conversations the bus names; ``drain`` does all pending now (tests)."""

    name_in_logs = "reports"
    settle = 2.0  # seconds from the first change noted to the pass
    chunk = 100  # conversations per pass
    catch_up_every = 60.0  # seconds between sweeps for changes no event announced
    margin = dt.timedelta(seconds=5)  # sweeps overlap by this much (clock skew between writers)

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self._dirty: dict[int, None] = {}
        self._wake = asyncio.Event()
        self._swept_at: dt.datetime | None = None
        self._presence: set[int] = set()
        rt.bus.subscribe(self._on_event, kinds=KINDS)
        rt.bus.subscribe(self._on_agent, kinds=(AgentChanged,))

    async def _on_event(self, event: Event) -> None:
        assert isinstance(event, MessageCreated | ConversationCreated | ConversationUpdated | RatingRecorded
                          | IntentHeard)
        self._dirty[event.conversation_id] = None
        self._wake.set()

    async def _on_agent(self, event: Event) -> None:
        assert isinstance(event, AgentChanged)
        if "presence" in event.changes:
            self._presence.add(event.user_id)
            self._wake.set()

    def note(self, conversation_id: int) -> None:
        self._dirty[conversation_id] = None

    async def drain(self) -> int:
        """Recompute the facts of every conversation noted so far; the number stored."""
        done = 0
        if self._presence:
            users, self._presence = self._presence, set()
            try:
                await self.rt.db.write(lambda tx: do_record_presence(tx, users))
            except Exception:
                log.exception("reports: presence of %s agents could not be recorded", len(users))
        while self._dirty:
            ids = list(itertools.islice(self._dirty, self.chunk))
            for cid in ids:
                del self._dirty[cid]
            try:
                async with self.rt.db.read() as s:
                    facts, gone = await load_facts(s, ids)

                async def job(tx: Tx, f: list[dict[str, Any]] = facts, g: list[int] = gone) -> int:
                    return await do_store_facts(tx, f, g)

                done += await self.rt.db.write(job)
            except Exception:
                log.exception("reports: facts of %s conversations could not be stored; the sweep retries", len(ids))
        return done

    async def catch_up(self) -> int:
        """Note conversations whose history changed since the last sweep (at start: since the newest fact)."""
        started = now()
        since = self._swept_at
        async with self.rt.db.read() as s:
            if since is None:
                since = await s.scalar(select(func.max(ReportFact.computed_at)))
            stmt = select(Conversation.id).order_by(Conversation.id)
            if since is not None:
                stmt = stmt.where(changed_since_filter(since - self.margin))
            ids = list((await s.execute(stmt)).scalars())
        for cid in ids:
            self._dirty[cid] = None
        self._swept_at = started
        return len(ids)

    async def _loop(self) -> None:
        last_sweep = -1e9
        loop = asyncio.get_running_loop()
        while True:
            try:
                if loop.time() - last_sweep >= self.catch_up_every:
                    last_sweep = loop.time()
                    await self.catch_up()
                await self.drain()
            except Exception:
                log.exception("reports: pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.catch_up_every)
            self._wake.clear()
            await asyncio.sleep(self.settle)


def reports_worker_of(rt: Runtime) -> ReportsWorker:
    if rt.reports_worker is None:
        rt.reports_worker = ReportsWorker(rt)
    return rt.reports_worker
