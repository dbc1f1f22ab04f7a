"""The quality monitor: after each change to a conversation, bring its SLA clocks, standards checks and
rating question up to date.

Listeners run after commit on the writer's loop and must be quick, so the listener only notes the
conversation and wakes the monitor's task, which does the work in its own write transactions. All that
work is derived from stored history (``sla/clocks.py``), so it is idempotent; what must not be lost is
covered by a sweep at start (open conversations, and resolved ones whose rating is pending), which repairs
whatever a crash between a commit and the monitor's pass left undone. Deadlines themselves are ``timers``
rows, fired exactly once by the timer worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import or_, select

from kommutator.clock import now
from kommutator.conversations.models import OPEN_STATUSES, Conversation
from kommutator.db import Tx
from kommutator.events import ConversationCreated, ConversationUpdated, Event, MessageCreated
from kommutator.quality.csat import ASK_WITHIN, do_ask_rating, do_follow_up
from kommutator.quality.models import QualityState
from kommutator.quality.sla import deadlines  # noqa: F401  (registers the SLA timer handlers)
from kommutator.quality.sla.clocks import do_reconcile_clocks
from kommutator.quality.standards import do_check_new_replies
from kommutator.runtime import Runtime
from kommutator.workers.base import BackgroundTask

log = logging.getLogger(__name__)


async def do_reconcile(tx: Tx, conversation_id: int, *, resolved_by_bot: bool = False) -> None:
    """Everything the monitor keeps for one conversation, up to date."""
    conv = await tx.session.get(Conversation, conversation_id)
    if conv is None:
        return
    state = await tx.session.get(QualityState, conversation_id)
    if state is None:
        state = QualityState(conversation_id=conversation_id, updated_at=now())
        tx.session.add(state)
        await tx.session.flush()
    await do_reconcile_clocks(tx, conv)
    await do_check_new_replies(tx, conv, state)
    if conv.status == "resolved":
        await do_ask_rating(tx, conv, state, resolved_by_bot=resolved_by_bot)
    await do_follow_up(tx, conv, state)


class QualityMonitor(BackgroundTask):
    """Reconcile conversations the bus names; ``drain`` does all pending now (tests), ``sweep`` at start."""

    name_in_logs = "quality-monitor"

    def __init__(self, rt: Runtime) -> None:
        super().__init__()
        self.rt = rt
        self._dirty: dict[int, bool] = {}  # conversation id -> resolved by the bot
        self._wake = asyncio.Event()
        rt.bus.subscribe(self._on_event, kinds=(MessageCreated, ConversationCreated, ConversationUpdated))

    async def _on_event(self, event: Event) -> None:
        assert isinstance(event, MessageCreated | ConversationCreated | ConversationUpdated)
        by_bot = isinstance(event, ConversationUpdated) and event.changes.get("resolved_by") == "bot"
        self._dirty[event.conversation_id] = self._dirty.get(event.conversation_id, False) or by_bot
        self._wake.set()

    async def drain(self) -> int:
        """Reconcile every conversation noted so far; the number done."""
        done = 0
        while self._dirty:
            conv_id, by_bot = next(iter(self._dirty.items()))
            del self._dirty[conv_id]

            async def job(tx: Tx, cid: int = conv_id, bot: bool = by_bot) -> None:
                await do_reconcile(tx, cid, resolved_by_bot=bot)

            try:
                await self.rt.db.write(job)
                done += 1
            except Exception:
                log.exception("quality: conversation %s could not be reconciled; the sweep retries", conv_id)
        return done

    async def sweep(self) -> int:
        """Reconcile open conversations and those resolved recently (after a restart: nothing is missed)."""
        since = now() - ASK_WITHIN
        async with self.rt.db.read() as s:
            ids = list((await s.execute(
                select(Conversation.id).outerjoin(QualityState, QualityState.conversation_id == Conversation.id)
                .where(or_(Conversation.status.in_(OPEN_STATUSES),
                           Conversation.resolved_at >= since,
                           QualityState.csat_state.in_(("rated", "commented"))))
                .order_by(Conversation.id))).scalars())
        for cid in ids:
            self._dirty.setdefault(cid, False)
        return await self.drain()

    async def _loop(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("quality: the start-up sweep failed")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=30)
            self._wake.clear()
            await self.drain()


def monitor_of(rt: Runtime) -> QualityMonitor:
    if rt.quality_monitor is None:
        rt.quality_monitor = QualityMonitor(rt)
    return rt.quality_monitor


