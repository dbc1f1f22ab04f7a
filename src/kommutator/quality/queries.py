"""Reads other domains show: a customer's past ratings (the customer card)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.conversations.models import Conversation
from kommutator.conversations.queries import may_see
from kommutator.quality.models import Rating


async def visible(s: AsyncSession, principal: Principal, conversation_id: int) -> bool:
    """The same rule as the conversations API: supervisors, the team, the assignee, the personal manager."""
    conv = await s.get(Conversation, conversation_id)
    return conv is not None and await may_see(s, principal, conv)


async def card_ratings(s: AsyncSession, principal: Principal, contact_id: int) -> list[dict[str, Any]]:
    """The customer card's past ratings (the contact and conversation detail APIs): newest 20 the principal may see."""
    return [{"conversation_id": r.conversation_id, "scale": r.scale, "score": r.score, "comment": r.comment,
             "created_at": r.created_at} for r in await ratings_of(s, principal, contact_id, limit=20)]


async def ratings_of(s: AsyncSession, principal: Principal, contact_id: int, *, limit: int = 100) -> list[Rating]:
    """The contact's ratings of conversations the principal may see, newest first."""
    rows = list((await s.execute(select(Rating).where(Rating.contact_id == contact_id)
                                 .order_by(Rating.id.desc()).limit(limit))).scalars())
    return [r for r in rows if await visible(s, principal, r.conversation_id)]
