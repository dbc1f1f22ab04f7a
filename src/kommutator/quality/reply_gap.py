"""The "maximum time between replies" standard, judged live and counting only the agent's own time.

A customer's message waits for the agent it is assigned to. The gap counts from the later of the first
unanswered customer message and the moment the conversation came to this agent (a transfer, or a return to
the queue and back, starts it again for whoever holds it now), and stops counting while the conversation
waits for the customer or is snoozed. Time with the bot and in the queue is nobody's gap.

Live: while the conversation is assigned and the customer waits, the deadline is a ``timers`` row
(``standard.reply_gap``, subject the conversation) kept by the monitor's reconciliation; when it fires, the
handler recomputes from the database and records the violation and its alert in the same transaction. A late
reply that the timer has already judged is not judged again: a violation is one per (conversation, agent,
waiting customer message) — ``standard_violations.message_id`` of a ``reply_gap`` row is the customer's
message that waited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from kommutator.clock import now
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.db import Tx
from kommutator.quality.models import CommunicationStandard, StandardViolation
from kommutator.quality.sla.clocks import counted, deadline
from kommutator.workers.models import Timer
from kommutator.workers.timers import do_cancel, do_schedule

GAP_TIMER = "standard.reply_gap"
HELD = ("assigned", "waiting", "snoozed")  # statuses in which the conversation stays with its agent
Pauses = list[tuple[dt.datetime, dt.datetime | None]]


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    to_status: str
    assignee_id: int | None


@dataclass(frozen=True)
class Stretch:
    """The agent's latest unbroken hold of the conversation up to a moment, and its pauses."""

    start: dt.datetime
    pauses: Pauses


def stretch(steps: Sequence[Step], agent_id: int, until: dt.datetime) -> Stretch | None:
    """The agent's hold in force at ``until`` (None if the conversation was not theirs then); pure."""
    start: dt.datetime | None = None
    pauses: Pauses = []
    for st in steps:
        if st.at > until:
            break
        holder = st.assignee_id if st.to_status in HELD else None
        if holder != agent_id:
            start, pauses = None, []
            continue
        if start is None:
            start = st.at
        if st.to_status != "assigned" and (not pauses or pauses[-1][1] is not None):
            pauses.append((st.at, None))
        elif st.to_status == "assigned" and pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], st.at)
    return Stretch(start, pauses) if start is not None else None


def gap_seconds(steps: Sequence[Step], agent_id: int, awaiting_at: dt.datetime, at: dt.datetime) -> float | None:
    """Seconds the customer waited for this agent by ``at`` (None: the conversation was not theirs)."""
    held = stretch(steps, agent_id, at)
    if held is None:
        return None
    start = max(awaiting_at, held.start)
    return counted(None, start, at, [(a, b) for a, b in held.pauses if (b or at) > start])


async def load_steps(tx: Tx, conversation_id: int) -> list[Step]:
    rows = (await tx.session.execute(
        select(Transition.at, Transition.to_status, Transition.assignee_id)
        .where(Transition.conversation_id == conversation_id).order_by(Transition.at, Transition.id))).all()
    return [Step(r.at, r.to_status, r.assignee_id) for r in rows]


async def awaiting(tx: Tx, conversation_id: int) -> tuple[int, dt.datetime] | None:
    """The first customer message after the latest agent reply: (id, at), or None when nothing waits."""
    last_reply = await tx.session.scalar(select(Message.id).where(
        Message.conversation_id == conversation_id, Message.direction == "out", Message.sender_type == "agent",
        Message.kind == "text").order_by(Message.id.desc()).limit(1))
    row = (await tx.session.execute(select(Message.id, Message.created_at).where(
        Message.conversation_id == conversation_id, Message.direction == "in",
        Message.id > (last_reply or 0)).order_by(Message.id).limit(1))).first()
    return (row.id, row.created_at) if row else None


async def already_judged(tx: Tx, conversation_id: int, agent_id: int | None, message_id: int) -> bool:
    return await tx.session.scalar(select(StandardViolation.id).where(
        StandardViolation.conversation_id == conversation_id, StandardViolation.rule == "reply_gap",
        StandardViolation.agent_id == agent_id, StandardViolation.message_id == message_id).limit(1)) is not None


@dataclass(frozen=True)
class LiveGap:
    agent_id: int
    message_id: int  # the customer's message that waits
    started_at: dt.datetime
    due_at: dt.datetime


async def live_gap(tx: Tx, conv: Conversation, standard: CommunicationStandard | None) -> LiveGap | None:
    """The running gap of the conversation now, if it is being counted and not judged yet."""
    limit = standard.max_reply_gap_seconds if standard is not None else None
    if not limit or conv.status != "assigned" or conv.assignee_id is None:
        return None
    waiting = await awaiting(tx, conv.id)
    if waiting is None:
        return None
    steps = await load_steps(tx, conv.id)
    held = stretch(steps, conv.assignee_id, now())
    if held is None:
        return None
    start = max(waiting[1], held.start)
    pauses: Pauses = [(a, b) for a, b in held.pauses if b is not None and b > start]
    due = deadline(None, start, limit, pauses)
    if due is None or await already_judged(tx, conv.id, conv.assignee_id, waiting[0]):
        return None
    return LiveGap(conv.assignee_id, waiting[0], start, due)


async def do_keep_gap_timer(tx: Tx, conv: Conversation, standard: CommunicationStandard | None) -> LiveGap | None:
    """Schedule, move or cancel the conversation's reply-gap timer to match what is counted now."""
    gap = await live_gap(tx, conv, standard)
    pending = (await tx.session.execute(select(Timer).where(
        Timer.kind == GAP_TIMER, Timer.subject_type == "conversation", Timer.subject_id == conv.id,
        Timer.status == "pending"))).scalars().all()
    if gap is None:
        if pending:
            await do_cancel(tx, kind=GAP_TIMER, subject_type="conversation", subject_id=conv.id)
        return None
    payload = {"agent_id": gap.agent_id, "message_id": gap.message_id}
    if len(pending) == 1 and pending[0].due_at == gap.due_at and pending[0].payload == payload:
        return gap
    await do_schedule(tx, kind=GAP_TIMER, subject_type="conversation", subject_id=conv.id, due_at=gap.due_at,
                      payload=payload)
    return gap


async def do_gap_due(tx: Tx, timer: Timer) -> None:
    """The limit passed: if the customer is still waiting for the same agent, record the violation (once)."""
    from kommutator.quality.standards import do_record_live_gap, standard_for

    conv = await tx.session.get(Conversation, timer.subject_id)
    if conv is None:
        return
    standard = await standard_for(tx, conv.team_id)
    gap = await live_gap(tx, conv, standard)
    if gap is None or gap.due_at > now():
        if gap is not None:  # moved later meanwhile (a pause): wait for the new deadline
            await do_keep_gap_timer(tx, conv, standard)
        return
    assert standard is not None and standard.max_reply_gap_seconds
    await do_record_live_gap(tx, conv, gap.agent_id, gap.message_id, standard.max_reply_gap_seconds)
