"""Create notifications and mark them read; the socket hears of each new one after commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import update

from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import not_found
from kommutator.events import NotificationCreated
from kommutator.notifications.models import SEVERITIES, Notification


async def do_notify(tx: Tx, *, user_ids: Iterable[int], kind: str, title: str, body: str = "",
                    severity: str = "info", conversation_id: int | None = None,
                    data: dict[str, Any] | None = None) -> list[Notification]:
    """Notify each user once (duplicates in ``user_ids`` are ignored); the texts are stored as given."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    ts = now()
    rows = [Notification(user_id=uid, kind=kind, severity=severity, title=title[:300], body=body,
                         conversation_id=conversation_id, data=dict(data or {}), created_at=ts)
            for uid in dict.fromkeys(user_ids)]
    tx.session.add_all(rows)
    await tx.session.flush()
    for n in rows:
        tx.publish(NotificationCreated(user_id=n.user_id, notification_id=n.id, notification_kind=kind,
                                       severity=severity, title=n.title, body=body, conversation_id=conversation_id))
    return rows


async def do_mark_read(tx: Tx, *, user_id: int, notification_id: int | None = None) -> int:
    """Mark one of the user's notifications read (404 when it is not theirs), or all when no id; the count."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_id is not None:
        mine = await tx.session.get(Notification, notification_id)
        if mine is None or mine.user_id != user_id:
            raise not_found("notification", notification_id)
        stmt = stmt.where(Notification.id == notification_id)
    result = await tx.conn.execute(stmt.values(read_at=now()))
    return int(result.rowcount or 0)
