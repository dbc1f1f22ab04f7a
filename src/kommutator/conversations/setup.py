"""Register what the conversations domain handles, called once from the composition root (app.py)."""

from __future__ import annotations

from kommutator.conversations.locks import do_lock_conversation
from kommutator.conversations.timers import UNSNOOZE, do_wake_snoozed
from kommutator.db import Tx
from kommutator.workers.timers import register_subject_lock, register_timer


async def _lock(tx: Tx, conversation_id: int) -> None:
    await do_lock_conversation(tx, conversation_id)


def register_all() -> None:
    register_timer(UNSNOOZE, do_wake_snoozed)
    # A conversation's timers fire with the conversation locked first (the one lock order, docs/recovery.md).
    register_subject_lock("conversation", _lock)
