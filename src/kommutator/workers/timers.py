"""Durable timers: rows in ``timers``, fired exactly once by whichever process claims them.

A handler runs in the same transaction that marks its timer fired, so a crash or restart either fires a
timer with its effects or not at all — never twice, never lost. Time comes from ``clock.now()``; tests
move the clock and call ``run_due()`` instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Update, select, update

from kommutator.clock import now
from kommutator.db import Database, Tx
from kommutator.workers.base import PollingWorker
from kommutator.workers.models import Timer

log = logging.getLogger(__name__)

_REPORT_EVERY = dt.timedelta(minutes=1)
TimerHandler = Callable[[Tx, Timer], Awaitable[None]]
_handlers: dict[str, TimerHandler] = {}
SubjectLock = Callable[[Tx, int], Awaitable[None]]
_subject_locks: dict[str, SubjectLock] = {}


def register_timer(kind: str, handler: TimerHandler) -> None:
    """Make ``handler`` fire the timers of ``kind`` (one handler per kind); called from a domain's
    ``register_all()`` at start-up. Until then due timers of that kind wait, reported as errors."""
    if kind in _handlers and _handlers[kind] is not handler:
        raise RuntimeError(f"timer kind {kind!r} has two handlers")
    _handlers[kind] = handler


def register_subject_lock(subject_type: str, lock: SubjectLock) -> None:
    """Lock a timer's subject (e.g. its conversation) before the timer is claimed: handlers then write the subject's
    rows in the documented lock order (conversations/locks.py), not the timer's row first."""
    _subject_locks[subject_type] = lock


async def do_schedule(tx: Tx, *, kind: str, subject_type: str, subject_id: int, due_at: dt.datetime,
                      payload: dict[str, Any] | None = None, replace: bool = True) -> Timer:
    """Schedule a timer; by default a pending timer of the same kind and subject is replaced."""
    if replace:
        await do_cancel(tx, kind=kind, subject_type=subject_type, subject_id=subject_id)
    timer = Timer(kind=kind, subject_type=subject_type, subject_id=subject_id, due_at=due_at, payload=payload or {})
    tx.session.add(timer)
    return timer


def cancel_timers_statement(kind: str, subject_type: str, subject_id: int) -> Update:
    return update(Timer).where(Timer.kind == kind, Timer.subject_type == subject_type,
                               Timer.subject_id == subject_id, Timer.status == "pending").values(status="cancelled")


async def do_cancel(tx: Tx, *, kind: str, subject_type: str, subject_id: int) -> None:
    await tx.conn.execute(cancel_timers_statement(kind, subject_type, subject_id))


class TimerWorker(PollingWorker):
    """Fire due timers; ``start`` polls in the background, ``run_due`` fires what is due now (tests)."""

    name_in_logs = "timers"

    def __init__(self, db: Database, *, interval: float = 1.0, batch: int = 100, owner: str | None = None) -> None:
        super().__init__()
        self.db = db
        self.owner = owner  # the process firing timers (workers/owners.py), recorded on each timer it fires
        self.interval = interval
        self.batch = batch
        self._reported_at: dt.datetime | None = None

    async def run_due(self) -> int:
        ts = now()
        async with self.db.read() as s:
            # Only kinds with a handler: a timer nobody handles waits (and is reported) instead of being lost,
            # and cannot crowd out the batch.
            due = list((await s.execute(
                select(Timer.id, Timer.subject_type, Timer.subject_id)
                .where(Timer.status == "pending", Timer.due_at <= ts, Timer.kind.in_(list(_handlers)))
                .order_by(Timer.due_at).limit(self.batch))).all())
            if self._reported_at is None or ts - self._reported_at >= _REPORT_EVERY:
                self._reported_at = ts
                orphans = list((await s.execute(
                    select(Timer.kind).where(Timer.status == "pending", Timer.due_at <= ts,
                                             Timer.kind.not_in(list(_handlers))).distinct().limit(20))).scalars())
                for kind in orphans:
                    log.error("due timers of kind %r have no handler (is its domain registered in app.py?); "
                              "they stay pending", kind)
        fired = 0
        for timer_id, subject_type, subject_id in due:
            async def job(tx: Tx, tid: int = timer_id, st: str = subject_type, sid: int = subject_id) -> int:
                lock = _subject_locks.get(st)
                if lock is not None:
                    await lock(tx, sid)
                return await self._fire(tx, tid)

            try:
                fired += await self.db.write(job)
            except Exception:
                log.exception("timer %s failed; it stays pending and is retried", timer_id)
        return fired

    async def _fire(self, tx: Tx, timer_id: int) -> int:
        # Claiming and the handler's effects commit together: exactly once across processes.
        claimed = await tx.session.execute(
            update(Timer).where(Timer.id == timer_id, Timer.status == "pending")
            .values(status="fired", fired_at=now(), claimed_by=self.owner).returning(Timer.id))
        if claimed.scalar_one_or_none() is None:
            return 0
        timer = await tx.session.get(Timer, timer_id)
        assert timer is not None
        await _handlers[timer.kind](tx, timer)  # run_due picks only kinds with a handler
        return 1
