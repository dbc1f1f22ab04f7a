"""Deliveries are written by the transaction that made the event (a hook the database runs before each commit).

So an event a subscriber is owed exists exactly when its change was committed: a crash after the commit loses
nothing, a rollback sends nothing. The journal knows the enabled subscriptions from a copy it keeps in memory,
read again after every change made through this process and at least every ``REFRESH`` seconds (other
processes' changes); a write with no subscribed event costs one isinstance check per event.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, select

from kommutator.clock import now
from kommutator.db import Tx
from kommutator.events import Event
from kommutator.subscriptions.catalogue import kinds_for, public_events
from kommutator.subscriptions.models import Delivery, Subscription

if TYPE_CHECKING:
    from kommutator.runtime import Runtime

log = logging.getLogger(__name__)
REFRESH = 10.0
_INSERT = insert(cast(Table, Delivery.__table__))


class Journal:
    def __init__(self) -> None:
        self.subscriptions: list[tuple[int, frozenset[str]]] = []
        self.kinds: tuple[type[Event], ...] = ()
        self.loaded_at: float | None = None

    def set(self, rows: list[tuple[int, list[str]]]) -> None:
        self.subscriptions = [(sid, frozenset(types)) for sid, types in rows]
        self.kinds = kinds_for({t for _, types in self.subscriptions for t in types})
        self.loaded_at = time.monotonic()

    def stale(self) -> bool:
        return self.loaded_at is None or time.monotonic() - self.loaded_at > REFRESH

    async def reload(self, rt: Runtime) -> None:
        async with rt.db.read() as s:
            rows = (await s.execute(select(Subscription.id, Subscription.event_types)
                                    .where(Subscription.enabled.is_(True)))).all()
        self.set([(sid, list(types or [])) for sid, types in rows])

    async def before_commit(self, tx: Tx) -> None:
        if not tx.events:
            return
        if self.loaded_at is None:  # the first write of a process: read the subscriptions on its connection
            found = (await tx.conn.execute(select(Subscription.id, Subscription.event_types)
                                           .where(Subscription.enabled.is_(True)))).all()
            self.set([(sid, list(types or [])) for sid, types in found])
        if not self.kinds:
            return
        rows: list[dict[str, Any]] = []
        ts = now()
        for ev in tx.events:
            if not isinstance(ev, self.kinds):
                continue
            for public in public_events(ev):
                for sid, types in self.subscriptions:
                    if public.type in types:
                        rows.append({"subscription_id": sid, "event_id": f"msg_{uuid.uuid4().hex}",
                                     "event_type": public.type, "order_key": public.order_key,
                                     "event": public.data, "occurred_at": ts, "status": "pending", "attempts": 0,
                                     "next_attempt_at": ts, "last_error": ""})
        if rows:
            await tx.conn.execute(_INSERT, rows)


def journal_of(rt: Runtime) -> Journal:
    """The runtime's journal, hooked into its database on first use (app.py asks for it at start-up)."""
    if rt.journal is None:
        rt.journal = Journal()
        rt.db.before_commit.append(rt.journal.before_commit)
    return rt.journal
