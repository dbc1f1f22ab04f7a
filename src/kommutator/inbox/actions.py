"""Mark a conversation read for the acting user."""

from __future__ import annotations

from sqlalchemy import func, select

from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.conversations.actions import get_visible_conversation
from kommutator.conversations.models import Message
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.inbox.models import ReadMark


async def do_mark_read(tx: Tx, principal: Principal, conversation_id: int, message_id: int | None) -> int:
    """Move the user's read mark forward (never back) to message_id, or to the newest message; return it."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    newest = await tx.session.scalar(select(func.max(Message.id)).where(Message.conversation_id == conv.id)) or 0
    if message_id is None:
        target = newest
    elif message_id > newest:
        raise ProblemError(422, "message_not_in_conversation",
                           f"message_id: {message_id} is not a message of conversation {conv.id}.")
    else:
        target = message_id
    mark = await tx.session.get(ReadMark, (principal.user_id, conv.id))
    if mark is None:
        tx.session.add(ReadMark(user_id=principal.user_id, conversation_id=conv.id, last_read_message_id=target,
                                read_at=now()))
        return target
    if target > mark.last_read_message_id:
        mark.last_read_message_id = target
        mark.read_at = now()
    return mark.last_read_message_id
