"""/api/v1/notifications: the caller's own notifications, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.notifications.actions import do_mark_read
from kommutator.notifications.models import Notification
from kommutator.notifications.schemas import NotificationList, NotificationRead

router = APIRouter(tags=["notifications"], route_class=SafeRoute)


@router.get("/notifications", response_model=NotificationList)
async def list_notifications(rt: RuntimeDep, principal: CurrentPrincipal, unread: bool = False,
                             limit: int = Query(50, ge=1, le=200)) -> NotificationList:
    """My notifications (only unread ones with ``unread=true``) and how many are unread."""
    mine = Notification.user_id == principal.user_id
    stmt = select(Notification).where(mine).order_by(Notification.id.desc()).limit(limit)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    async with rt.db.read() as s:
        items = list((await s.execute(stmt)).scalars())
        count = await s.scalar(select(func.count()).select_from(Notification)
                               .where(mine, Notification.read_at.is_(None)))
    return NotificationList(items=[NotificationRead.model_validate(n) for n in items], unread=int(count or 0))


@router.post("/notifications/{notification_id}/read", status_code=204)
async def mark_read(rt: RuntimeDep, principal: CurrentPrincipal, notification_id: Id) -> None:
    """Mark one of my notifications read."""
    await rt.db.write(lambda tx: do_mark_read(tx, user_id=principal.user_id, notification_id=notification_id))


@router.post("/notifications/read-all", status_code=204)
async def mark_all_read(rt: RuntimeDep, principal: CurrentPrincipal) -> None:
    """Mark all my notifications read."""
    await rt.db.write(lambda tx: do_mark_read(tx, user_id=principal.user_id))
