"""Record what an agent did with suggestions: one event row each, and the counters the ranking reads."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from kommutator.assist.index import reply_key
from kommutator.assist.models import SuggestionEvent, SuggestionStats
from kommutator.assist.schemas import SentFeedback, ShownFeedback, SuggestionFeedback
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.conversations.actions import get_visible_conversation
from kommutator.conversations.models import Message
from kommutator.db import Tx
from kommutator.errors import ProblemError

_COUNTERS = {"shown": SuggestionStats.shown, "inserted": SuggestionStats.inserted,
             "sent_unedited": SuggestionStats.sent_unedited, "sent_edited": SuggestionStats.sent_edited}


async def check_sent_message(tx: Tx, principal: Principal, conversation_id: int, message_id: int) -> Message:
    """The reply the agent says they sent: theirs, in this conversation, to the customer (not a note); else 404."""
    msg = await tx.session.get(Message, message_id)
    if (msg is None or msg.conversation_id != conversation_id or msg.sender_user_id != principal.user_id
            or msg.direction != "out"):
        raise ProblemError(404, "message_not_found",
                           f"There is no reply of yours with id {message_id} in conversation {conversation_id}; "
                           "message_id must be the reply you sent with the suggestion.")
    return msg


async def _count(tx: Tx, key: str, action: str) -> None:
    ins = (postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert)(SuggestionStats)
    at = now()
    await tx.session.execute(ins.values(suggestion_key=key, shown=0, inserted=0, sent_unedited=0, sent_edited=0,
                                        updated_at=at).on_conflict_do_nothing(index_elements=["suggestion_key"]))
    column = _COUNTERS[action]
    await tx.session.execute(update(SuggestionStats).where(SuggestionStats.suggestion_key == key)
                             .values({column: column + 1, SuggestionStats.updated_at: at}))


async def do_record_feedback(tx: Tx, principal: Principal, conversation_id: int,
                             data: SuggestionFeedback) -> list[str]:
    """Record ``data`` for each key; a sent reply counts as unedited when its text is the inserted text
    (compared normalised: case, spacing and punctuation aside). Return what was recorded per key."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    action: str = data.action
    message_id = None
    if isinstance(data, SentFeedback):
        msg = await check_sent_message(tx, principal, conv.id, data.message_id)
        message_id = msg.id
        action = "sent_unedited" if reply_key(msg.text) == reply_key(data.inserted_text) else "sent_edited"
    keys = list(dict.fromkeys(data.keys)) if isinstance(data, ShownFeedback) else [data.key]
    recorded: list[str] = []
    for key in keys:
        tx.session.add(SuggestionEvent(suggestion_key=key, source=key.split(":", 1)[0], action=action,
                                       conversation_id=conv.id, user_id=principal.user_id, message_id=message_id,
                                       created_at=now()))
        await _count(tx, key, action)
        recorded.append(action)
    return recorded
