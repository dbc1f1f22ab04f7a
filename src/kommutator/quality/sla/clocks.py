"""Bring a conversation's SLA clocks up to date with what happened in it (idempotent).

Every clock is derived from stored history — status transitions and messages — never from an event
alone, so running this twice, late, or after a crash gives the same clocks. A clock's deadline comes from
its start, the pauses behind it and the business hours, not from the moment this runs, so a clock that did
not change keeps its timers untouched.

- first_response: from the hand-off to humans (the first transition to queued/assigned; the start when
  there was no bot) to the first agent reply the customer sees (notes and bot messages do not count);
- next_response: from the first customer message after the latest agent reply to the next agent reply,
  once the first response happened and while the conversation is open;
- resolution: from the start to resolution, paused while the conversation waits for the customer; a reopened
  conversation gets a new one from the reopening (``seq``: the reopening's transition id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kommutator.clock import now
from kommutator.conversations.models import Conversation, Message, Transition
from kommutator.db import Tx
from kommutator.quality.business_time import business_seconds, instant_after
from kommutator.quality.models import SlaClock, SlaPolicy
from kommutator.quality.sla.policies import Targets, targets_for
from kommutator.workers.timers import do_cancel, do_schedule

WARN_TIMER = "sla.warning"
BREACH_TIMER = "sla.breach"
PAUSING = ("waiting",)  # waiting for the customer pauses the resolution clock


@dataclass
class History:
    frt_start: dt.datetime | None
    replies: list[tuple[int, dt.datetime]]  # agent replies visible to the customer: (message id, at)
    awaiting: tuple[int, dt.datetime] | None  # first customer message after the latest agent reply
    pauses: list[tuple[dt.datetime, dt.datetime | None]]
    reopens: list[tuple[int, dt.datetime]]  # (transition id, at) of each reopening after a resolution
    resolutions: list[dt.datetime]  # each move to resolved


async def load_history(tx: Tx, conv: Conversation) -> History:
    s = tx.session
    transitions = (await s.execute(select(Transition.id, Transition.at, Transition.from_status, Transition.to_status)
                                   .where(Transition.conversation_id == conv.id)
                                   .order_by(Transition.at, Transition.id))).all()
    frt_start = next((t.at for t in transitions if t.to_status in ("queued", "assigned")), None)
    if frt_start is None and conv.status != "bot":
        frt_start = conv.created_at
    pauses: list[tuple[dt.datetime, dt.datetime | None]] = []
    for t in transitions:
        if t.to_status in PAUSING and (not pauses or pauses[-1][1] is not None):
            pauses.append((t.at, None))
        elif t.to_status not in PAUSING and pauses and pauses[-1][1] is None:
            pauses[-1] = (pauses[-1][0], t.at)
    replies = [(r.id, r.created_at) for r in (await s.execute(
        select(Message.id, Message.created_at)
        .where(Message.conversation_id == conv.id, Message.direction == "out", Message.sender_type == "agent",
               Message.kind == "text").order_by(Message.id))).all()]
    after = replies[-1][0] if replies else 0
    row = (await s.execute(select(Message.id, Message.created_at)
                           .where(Message.conversation_id == conv.id, Message.direction == "in", Message.id > after)
                           .order_by(Message.id).limit(1))).first()
    reopens = [(t.id, t.at) for t in transitions if t.from_status == "resolved" and t.to_status != "resolved"]
    resolutions = [t.at for t in transitions if t.to_status == "resolved" and t.from_status != "resolved"]
    return History(frt_start, replies, (row.id, row.created_at) if row else None, pauses, reopens, resolutions)


def counted(hours: dict[str, Any] | None, start: dt.datetime, end: dt.datetime,
            pauses: list[tuple[dt.datetime, dt.datetime | None]]) -> float:
    """Seconds a clock counted in [start, end): business (or wall) time minus the pauses in it."""
    total = business_seconds(hours, start, end)
    for a, b in pauses:
        lo, hi = max(a, start), min(b or end, end)
        if hi > lo:
            total -= business_seconds(hours, lo, hi)
    return max(0.0, total)


def deadline(hours: dict[str, Any] | None, start: dt.datetime, seconds: float,
             pauses: list[tuple[dt.datetime, dt.datetime | None]]) -> dt.datetime | None:
    """When a clock started at ``start`` reaches ``seconds``, given closed pauses (None if it never does)."""
    anchor = start
    for _a, b in pauses:
        if b is not None and b > anchor:
            anchor = b
    consumed = counted(hours, start, anchor, pauses)
    return instant_after(hours, anchor, max(0.0, seconds - consumed))


async def _clock(tx: Tx, conv: Conversation, target: str, seq: int, started_at: dt.datetime,
                 targets: Targets) -> SlaClock:
    found = await tx.session.scalar(select(SlaClock).where(SlaClock.conversation_id == conv.id,
                                                           SlaClock.target == target, SlaClock.seq == seq))
    if found is None:
        found = SlaClock(conversation_id=conv.id, policy_id=targets.policy.id, target=target, seq=seq,
                         started_at=started_at, target_seconds=targets.seconds[target],
                         business=targets.hours is not None, status="running", updated_at=now())
        tx.session.add(found)
        await tx.session.flush()
    return found


async def _stop_timers(tx: Tx, clock: SlaClock) -> None:
    for kind in (WARN_TIMER, BREACH_TIMER):
        await do_cancel(tx, kind=kind, subject_type="sla_clock", subject_id=clock.id)
    clock.due_at = clock.warn_at = None


async def settle(tx: Tx, clock: SlaClock, *, hit_at: dt.datetime | None, ended: bool, paused: bool,
                 targets: Targets, pauses: list[tuple[dt.datetime, dt.datetime | None]]) -> None:
    """Record a hit, a clock made moot, a pause, or (re)schedule the warning and breach of a running clock."""
    if clock.status in ("hit", "missed", "cancelled"):
        return
    hours = targets.hours
    clock.policy_id, clock.target_seconds = targets.policy.id, targets.seconds.get(clock.target, clock.target_seconds)
    ts = now()
    clock.updated_at = ts
    if hit_at is not None:
        clock.elapsed_seconds = round(counted(hours, clock.started_at, hit_at, pauses))
        clock.counted_at, clock.hit_at = hit_at, hit_at
        clock.status = "missed" if clock.breached_at or clock.elapsed_seconds > clock.target_seconds else "hit"
        await _stop_timers(tx, clock)
        return
    if ended:
        clock.status = "missed" if clock.breached_at else "cancelled"
        await _stop_timers(tx, clock)
        return
    clock.elapsed_seconds, clock.counted_at = round(counted(hours, clock.started_at, ts, pauses)), ts
    if paused:
        clock.status = "paused"
        await _stop_timers(tx, clock)
        return
    clock.status = "running"
    due = deadline(hours, clock.started_at, clock.target_seconds, pauses)
    warn = deadline(hours, clock.started_at, clock.target_seconds * targets.warn_percent / 100, pauses)
    if clock.breached_at is None and due is not None and due != clock.due_at:
        await do_schedule(tx, kind=BREACH_TIMER, subject_type="sla_clock", subject_id=clock.id, due_at=due)
    if clock.warned_at is None and clock.breached_at is None and warn is not None and warn != clock.warn_at \
            and 0 < targets.warn_percent < 100:
        await do_schedule(tx, kind=WARN_TIMER, subject_type="sla_clock", subject_id=clock.id, due_at=warn)
    clock.due_at, clock.warn_at = due, warn


async def do_reconcile_clocks(tx: Tx, conv: Conversation, *,
                              policies: Sequence[SlaPolicy] | None = None) -> list[SlaClock]:
    """Create, stop, pause or reschedule the conversation's clocks; the clocks touched."""
    targets = await targets_for(tx, conv, policies=policies)
    open_clocks = list((await tx.session.execute(
        select(SlaClock).where(SlaClock.conversation_id == conv.id,
                               SlaClock.status.in_(("running", "paused"))))).scalars())
    if targets is None:
        for clock in open_clocks:  # the policy went away (or stopped matching): nothing holds the clock
            clock.status, clock.updated_at = "cancelled", now()
            await _stop_timers(tx, clock)
        return open_clocks
    history = await load_history(tx, conv)
    if history.frt_start is None:
        return []  # still with the bot: no human is on the clock yet
    resolved = conv.status == "resolved"
    touched: dict[int, SlaClock] = {c.id: c for c in open_clocks}
    first_reply = next((at for _id, at in history.replies if at >= history.frt_start), None)
    if "first_response" in targets.seconds:
        c = await _clock(tx, conv, "first_response", 0, history.frt_start, targets)
        touched[c.id] = c
    if "resolution" in targets.seconds:
        # One per stretch of work: from the start, and again from each reopening (seq: its transition id).
        c = await _clock(tx, conv, "resolution", 0, conv.created_at, targets)
        touched[c.id] = c
        if history.reopens:
            reopen_id, reopen_at = history.reopens[-1]
            c = await _clock(tx, conv, "resolution", reopen_id, reopen_at, targets)
            touched[c.id] = c
    if "next_response" in targets.seconds and first_reply is not None and history.awaiting and not resolved:
        c = await _clock(tx, conv, "next_response", history.awaiting[0], history.awaiting[1], targets)
        touched[c.id] = c
    paused_now = bool(history.pauses) and history.pauses[-1][1] is None
    for c in touched.values():
        if c.target == "resolution":
            hit = next((r for r in history.resolutions if r >= c.started_at), None)
            if hit is None and resolved:
                hit = conv.resolved_at
            await settle(tx, c, hit_at=hit, ended=False, paused=paused_now, targets=targets, pauses=history.pauses)
        else:
            after = c.seq if c.target == "next_response" else 0
            hit = next((at for mid, at in history.replies if mid > after and at >= c.started_at), None)
            await settle(tx, c, hit_at=hit, ended=resolved, paused=False, targets=targets, pauses=[])
    return list(touched.values())
