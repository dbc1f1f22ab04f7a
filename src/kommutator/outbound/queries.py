"""Reads about outbound: templates, a notification with its attempts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.contacts import policy
from kommutator.errors import not_found
from kommutator.outbound.models import MessageTemplate, NotificationAttempt, OutboundNotification
from kommutator.outbound.schemas import AttemptRead, NotificationRead, TemplateRead


async def templates(session: AsyncSession) -> list[TemplateRead]:
    rows = (await session.execute(select(MessageTemplate).order_by(MessageTemplate.name, MessageTemplate.language)))
    return [TemplateRead.model_validate(t) for t in rows.scalars()]


async def notification(session: AsyncSession, principal: Principal, notification_id: int) -> NotificationRead:
    """A notification of a contact the principal may see, with its attempts; else 404."""
    note = await session.get(OutboundNotification, notification_id)
    if note is None:
        raise not_found("notification", notification_id)
    try:
        await policy.check_see(session, principal, note.contact_id)
    except Exception:
        raise not_found("notification", notification_id) from None
    attempts = (await session.execute(select(NotificationAttempt).where(NotificationAttempt.outreach_id == note.id)
                                      .order_by(NotificationAttempt.position))).scalars()
    return NotificationRead.model_validate(note).model_copy(
        update={"attempts": [AttemptRead.model_validate(a) for a in attempts]})
