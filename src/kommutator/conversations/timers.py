"""Timers about conversations: a snoozed conversation wakes up when its time comes."""

from __future__ import annotations

from kommutator.clock import now
from kommutator.conversations.models import Conversation, Transition
from kommutator.db import Tx
from kommutator.events import ConversationUpdated
from kommutator.workers.models import Timer
from kommutator.workers.timers import on_timer

UNSNOOZE = "conversation.unsnooze"


@on_timer(UNSNOOZE)
async def do_wake_snoozed(tx: Tx, timer: Timer) -> None:
    """Bring a snoozed conversation back to its agent (or the queue) when the snooze ends."""
    conv = await tx.session.get(Conversation, timer.subject_id)
    ts = now()
    if conv is None or conv.status != "snoozed" or (conv.snoozed_until is not None and conv.snoozed_until > ts):
        return  # the customer wrote, an agent acted first, or the snooze was moved later
    target = "assigned" if conv.assignee_id else "queued"
    tx.session.add(Transition(conversation_id=conv.id, from_status="snoozed", to_status=target,
                              assignee_id=conv.assignee_id, team_id=conv.team_id, actor_user_id=None,
                              reason="the snooze ended", at=ts))
    conv.status, conv.snoozed_until, conv.updated_at = target, None, ts
    if target == "queued":
        conv.queued_at = ts
    tx.publish(ConversationUpdated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                                   status=target, changes={"status": ["snoozed", target]}))
