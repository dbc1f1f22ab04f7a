"""The warning and breach timers of SLA clocks: each fires once, in the transaction that records it."""

from __future__ import annotations

from kommutator.clock import now
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.quality.alerts import do_raise_alert
from kommutator.quality.models import SlaClock, SlaPolicy
from kommutator.quality.sla.clocks import do_reconcile_clocks
from kommutator.quality.texts import both, one
from kommutator.workers.models import Timer


async def _current(tx: Tx, timer: Timer) -> tuple[SlaClock, Conversation] | None:
    """The clock, brought up to date first: a reply committed just before the deadline is not a breach."""
    clock = await tx.session.get(SlaClock, timer.subject_id)
    if clock is None:
        return None
    conv = await tx.session.get(Conversation, clock.conversation_id)
    if conv is None:
        return None
    await do_reconcile_clocks(tx, conv)
    if clock.status != "running":
        return None
    return clock, conv


async def _raise(tx: Tx, clock: SlaClock, conv: Conversation, kind: str) -> None:
    policy = await tx.session.get(SlaPolicy, clock.policy_id) if clock.policy_id else None
    left = max(0.0, (clock.due_at - now()).total_seconds()) if clock.due_at else 0.0
    title = both(kind, conversation_id=conv.id, target=clock.target, left=left).split("\n")[0]
    await do_raise_alert(
        tx, kind=kind, title=title, body=both(kind, conversation_id=conv.id, target=clock.target, left=left),
        conversation_id=conv.id, team_id=conv.team_id, agent_id=conv.assignee_id,
        render=lambda lang: (one(kind, lang, conversation_id=conv.id, target=clock.target, left=left),) * 2,
        user_ids=(policy.notify_user_ids if policy and kind == "sla.breach" else []),
        emails=(policy.notify_emails if policy and kind == "sla.breach" else []),
        data={"clock_id": clock.id, "target": clock.target, "policy": policy.name if policy else None,
              "due_at": clock.due_at.isoformat() if clock.due_at else None})


async def do_warn(tx: Tx, timer: Timer) -> None:
    """The clock reached the policy's warning share of its target: tell the agent (once)."""
    found = await _current(tx, timer)
    if found is None:
        return
    clock, conv = found
    if clock.warned_at is not None or clock.breached_at is not None or clock.warn_at is None or clock.warn_at > now():
        return
    if clock.due_at is not None and clock.due_at <= now():
        return  # already past the deadline too (e.g. after downtime): the breach alert says it all
    clock.warned_at = now()
    await _raise(tx, clock, conv, "sla.warning")


async def do_breach(tx: Tx, timer: Timer) -> None:
    """The deadline passed without the target met: record the breach and alert (once)."""
    found = await _current(tx, timer)
    if found is None:
        return
    clock, conv = found
    if clock.breached_at is not None or clock.due_at is None or clock.due_at > now():
        return
    clock.breached_at = now()
    await _raise(tx, clock, conv, "sla.breach")
