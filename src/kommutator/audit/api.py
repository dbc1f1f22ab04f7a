"""/api/v1/audit-log: administrators read who did what, when, from where."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from kommutator.audit.models import AuditEntry
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.pagination import CursorQuery, Page, decode_id_cursor, encode_id_cursor
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, ReadModel

router = APIRouter(tags=["audit"], route_class=SafeRoute)


class AuditRead(ReadModel):
    id: int
    at: dt.datetime
    actor_user_id: int | None
    actor_token_id: int | None
    action: str
    subject_type: str
    subject_id: str
    ip: str
    detail: dict[str, Any]


class AuditList(Page):
    items: list[AuditRead]


@router.get("/audit-log", response_model=AuditList)
async def list_audit(
    rt: RuntimeDep, principal: CurrentPrincipal,
    action: str | None = Query(None, max_length=60, description="e.g. contact.viewed"),
    subject_type: str | None = Query(None, max_length=40),
    subject_id: str | None = Query(None, max_length=64),
    actor_user_id: int | None = Query(None, ge=1, le=MAX_ID),
    limit: int = Query(100, ge=1, le=500), cursor: CursorQuery = None,
) -> AuditList:
    """Newest first. Administrators only."""
    principal.require_admin()
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if cursor:
        stmt = stmt.where(AuditEntry.id < decode_id_cursor(cursor))
    for column, value in ((AuditEntry.action, action), (AuditEntry.subject_type, subject_type),
                          (AuditEntry.subject_id, subject_id), (AuditEntry.actor_user_id, actor_user_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    async with rt.db.read() as s:
        rows = list((await s.execute(stmt)).scalars())
    nxt = encode_id_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return AuditList(items=[AuditRead.model_validate(r) for r in rows[:limit]], next_cursor=nxt)
