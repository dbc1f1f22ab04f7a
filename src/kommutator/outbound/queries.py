"""Reads about outbound: templates, a notification with its attempts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.contacts import policy
from kommutator.conversations.models import Message
from kommutator.errors import not_found
from kommutator.outbound.models import MessageTemplate, NotificationAttempt, OutboundNotification
from kommutator.outbound.schemas import AttemptRead, NotificationRead, TemplateRead

_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}


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
    rows = (await session.execute(
        select(NotificationAttempt, Message.status, Message.status_reason, Message.status_updated_at)
        .outerjoin(Message, Message.id == NotificationAttempt.message_id)
        .where(NotificationAttempt.outreach_id == note.id).order_by(NotificationAttempt.position))).all()
    attempts = []
    for attempt, status, reason, at in rows:
        shown = AttemptRead.model_validate(attempt)
        if status is not None:  # the message's own status, as delivery reports move it (sent, delivered, read)
            shown = shown.model_copy(update={"status": status, "reason": reason or attempt.reason,
                                             "updated_at": at or attempt.updated_at})
        attempts.append(shown)
    status = note.status
    if status != "failed" and attempts:
        best = max((a.status for a in attempts if a.status in _RANK), key=_RANK.__getitem__, default=None)
        status = best if best not in (None, "queued") else "sending"
    return NotificationRead.model_validate(note).model_copy(update={"attempts": attempts, "status": status})
