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
import itertools
import logging
from collections.abc import Sequence

from sqlalchemy import or_, select

from kommutator.clock import now
from kommutator.conversations.models import OPEN_STATUSES, Conversation
from kommutator.db import Tx
from kommutator.events import ConversationCreated, ConversationUpdated, Event, MessageCreated
from kommutator.quality.csat import ASK_WITHIN, do_ask_rating, do_follow_up
from kommutator.quality.models import CommunicationStandard, QualityState, SlaPolicy
from kommutator.quality.reply_gap import do_keep_gap_timer
from kommutator.quality.sla import deadlines  # noqa: F401  (registers the SLA timer handlers)
from kommutator.quality.sla.clocks import do_reconcile_clocks
from kommutator.quality.sla.policies import enabled_policies
from kommutator.quality.standards import all_standards, do_check_new_replies, standard_for
from kommutator.runtime import Runtime
from kommutator.workers.base import BackgroundTask, wait_for_wake

log = logging.getLogger(__name__)


async def do_reconcile(tx: Tx, conversation_id: int, *, resolved_by_bot: bool = False,
                       policies: Sequence[SlaPolicy] | None = None,
                       standards: Sequence[CommunicationStandard] | None = None) -> None:
    """Everything the monitor keeps for one conversation, up to date (``policies``, ``standards``: read
    once in this transaction for several conversations)."""
    conv = await tx.session.get(Conversation, conversation_id)
    if conv is None:
        return
    state = await tx.session.get(QualityState, conversation_id)
    if state is None:
        state = QualityState(conversation_id=conversation_id, updated_at=now())
        tx.session.add(state)
        await tx.session.flush()
    await do_reconcile_clocks(tx, conv, policies=policies)
    await do_check_new_replies(tx, conv, state, standards=standards)
    await do_keep_gap_timer(tx, conv, await standard_for(tx, conv.team_id, standards=standards))
    if conv.status == "resolved":
        await do_ask_rating(tx, conv, state, resolved_by_bot=resolved_by_bot)
    await do_follow_up(tx, conv, state)


async def _prefetch(tx: Tx, ids: list[int]) -> list[object]:
    """Load the chunk's conversations and quality states in two statements, so that the reconciliations'
    lookups by primary key come from the session instead of one statement each. The session's identity
    map holds objects weakly: the caller keeps the returned list until the chunk is done."""
    if len(ids) < 2:
        return []
    held: list[object] = list((await tx.session.execute(
        select(Conversation).where(Conversation.id.in_(ids)))).scalars())
    held += (await tx.session.execute(select(QualityState).where(QualityState.conversation_id.in_(ids)))).scalars()
    return held


class QualityMonitor(BackgroundTask):
    """Reconcile conversations the bus names; ``drain`` does all pending now (tests), ``sweep`` at start.

    The work is coalesced: the loop waits ``settle`` seconds after a wake-up, so the several events one
    customer message causes (the message, the bot's answer, the conversation's changes) cost one
    reconciliation, and up to ``chunk`` conversations share one write transaction.
    """

    name_in_logs = "quality-monitor"
    settle = 1.0  # seconds from the first change noted to the pass (the bot's answer comes within it)
    chunk = 4  # conversations per write transaction: one holds the single writer (and intake) ~10 ms at most

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
            items = list(itertools.islice(self._dirty.items(), self.chunk))
            for conv_id, _ in items:
                del self._dirty[conv_id]

            async def job(tx: Tx, todo: list[tuple[int, bool]] = items) -> None:
                held = await _prefetch(tx, [cid for cid, _ in todo])  # noqa: F841  (held: see _prefetch)
                policies, standards = await enabled_policies(tx), await all_standards(tx)
                for cid, bot in todo:
                    await do_reconcile(tx, cid, resolved_by_bot=bot, policies=policies, standards=standards)

            try:
                await self.rt.db.write(job)
                done += len(items)
                continue
            except Exception:
                if len(items) == 1:
                    log.exception("quality: conversation %s could not be reconciled; the sweep retries", items[0][0])
                    continue
            # One of them failed and took the others' transaction with it: each alone, so the rest are done.
            for conv_id, by_bot in items:

                async def one(tx: Tx, cid: int = conv_id, bot: bool = by_bot) -> None:
                    await do_reconcile(tx, cid, resolved_by_bot=bot)

                try:
                    await self.rt.db.write(one)
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
            await wait_for_wake(self._wake, 30)
            self._wake.clear()
            await asyncio.sleep(self.settle)  # let the rest of this burst's events arrive: one pass for all
            await self.drain()


def monitor_of(rt: Runtime) -> QualityMonitor:
    if rt.quality_monitor is None:
        rt.quality_monitor = QualityMonitor(rt)
    return rt.quality_monitor


