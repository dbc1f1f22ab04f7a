"""Reads for suggestions: the message stream the index learns from, what the customer wrote, usage counters."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.agents.models import User
from kommutator.assist.history import KEEP, Row
from kommutator.assist.models import SuggestionStats
from kommutator.assist.rank import Usage
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Conversation, Message


async def history_rows(session: AsyncSession, *, after_id: int, limit: int) -> list[Row]:
    """Customer messages and agent replies (text only, no notes) after ``after_id``, in id order."""
    stmt = (select(Message.id, Message.conversation_id, Conversation.team_id, Message.direction, Message.sender_type,
                   Message.text, Contact.name, User.name, Message.created_at)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .outerjoin(User, User.id == Message.sender_user_id)
            .where(Message.id > after_id, Message.kind == "text", Message.direction.in_(("in", "out")))
            .order_by(Message.id).limit(limit))
    rows = (await session.execute(stmt)).all()
    return [Row(id=r[0], conversation_id=r[1], team_id=r[2], direction=r[3], sender_type=r[4], text=r[5] or "",
                contact_name=r[6] or "", agent_name=r[7] or "", created_at=r[8]) for r in rows]


async def customer_text(session: AsyncSession, conversation_id: int) -> str:
    """What the customer wrote that the suggestions answer: their text messages since the last agent reply (at
    most the last three), else their latest messages before it."""
    rows = (await session.execute(
        select(Message.direction, Message.sender_type, Message.text)
        .where(Message.conversation_id == conversation_id, Message.kind == "text")
        .order_by(Message.id.desc()).limit(30))).all()
    waiting: list[str] = []
    earlier: list[str] = []
    answered = False
    for direction, sender_type, text in rows:
        if direction == "out" and sender_type == "agent":
            if waiting or earlier:
                break
            answered = True
        elif direction == "in" and (text or "").strip():
            (earlier if answered else waiting).append(text.strip())
            if len(earlier) >= KEEP:
                break
    chosen = waiting or earlier
    return "\n".join(reversed(chosen[:KEEP]))


async def contact_values(session: AsyncSession, conv: Conversation, agent_name: str) -> dict[str, str]:
    """The placeholder values of canned responses for this conversation and agent."""
    contact = await session.get(Contact, conv.contact_id)
    return {"contact.name": (contact.name if contact else "") or "",
            "contact.email": (contact.email if contact else "") or "",
            "contact.phone": (contact.phone if contact else "") or "", "agent.name": agent_name}


async def usage_of(session: AsyncSession, keys: Iterable[str]) -> dict[str, Usage]:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    rows = (await session.execute(select(SuggestionStats).where(SuggestionStats.suggestion_key.in_(wanted)))).scalars()
    return {r.suggestion_key: Usage(r.shown, r.inserted, r.sent_unedited, r.sent_edited) for r in rows}
