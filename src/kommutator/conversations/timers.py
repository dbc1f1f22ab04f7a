"""Timers about conversations: a snoozed conversation wakes up when its time comes."""

from __future__ import annotations

from kommutator.clock import now
from kommutator.conversations import lifecycle
from kommutator.conversations.models import Conversation
from kommutator.db import Tx
from kommutator.workers.models import Timer

UNSNOOZE = "conversation.unsnooze"


async def do_wake_snoozed(tx: Tx, timer: Timer) -> None:
    """Bring a snoozed conversation back to its agent (or the queue) when the snooze ends."""
    conv = await tx.session.get(Conversation, timer.subject_id)
    ts = now()
    if conv is None or conv.status != "snoozed" or (conv.snoozed_until is not None and conv.snoozed_until > ts):
        return  # the customer wrote, an agent acted first, or the snooze was moved later
    lifecycle.apply(tx, conv, lifecycle.wake(lifecycle.Now.of(conv), at=ts, reason="the snooze ended",
                                             code="snooze_ended"))
