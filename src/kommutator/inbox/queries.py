"""Unread counts for the viewing user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.conversations.models import Message
from kommutator.inbox.models import ReadMark


async def unread_counts(session: AsyncSession, user_id: int, conversation_ids: list[int]) -> dict[int, int]:
    """Customer messages after the user's read mark (all of them when never opened), per conversation."""
    if not conversation_ids:
        return {}
    stmt = (select(Message.conversation_id, func.count())
            .select_from(Message)
            .outerjoin(ReadMark, and_(ReadMark.conversation_id == Message.conversation_id,
                                      ReadMark.user_id == user_id))
            .where(Message.conversation_id.in_(conversation_ids), Message.direction == "in",
                   Message.id > func.coalesce(ReadMark.last_read_message_id, 0))
            .group_by(Message.conversation_id))
    return {cid: int(n) for cid, n in (await session.execute(stmt)).all()}


async def last_messages(session: AsyncSession, conversation_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """The latest message of each conversation (text, direction, kind), for the list's preview line."""
    if not conversation_ids:
        return {}
    newest = (select(func.max(Message.id)).where(Message.conversation_id.in_(conversation_ids), Message.kind != "event")
              .group_by(Message.conversation_id))
    rows = await session.execute(select(Message.conversation_id, Message.text, Message.direction, Message.kind)
                                 .where(Message.id.in_(newest)))
    return {cid: (text[:200], direction, kind) for cid, text, direction, kind in rows.all()}


def message_search(q: str) -> Select[Any]:
    """Ids of conversations with a message containing q, ignoring case.

    SQLite folds only ASCII letters in ILIKE, so, as contacts/queries.search_clause does, the usual spellings
    of the query (as typed, lower, upper, capitalised) are tried to cover Cyrillic.
    """
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    likes = [f"%{v}%" for v in dict.fromkeys((escaped, escaped.lower(), escaped.upper(), escaped.capitalize()))]
    return (select(Message.conversation_id)
            .where(Message.kind != "event", or_(*(Message.text.ilike(like, escape="\\") for like in likes))))
