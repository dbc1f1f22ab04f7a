"""Reads of canned responses, filtered by what the principal may use."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.canned.models import CannedResponse
from kommutator.errors import not_found


async def list_canned(session: AsyncSession, principal: Principal, *, q: str = "",
                      team_id: int | None = None) -> list[CannedResponse]:
    """Global ones and the principal's teams' (supervisors: all), by shortcut."""
    stmt = select(CannedResponse).order_by(CannedResponse.shortcut, CannedResponse.id)
    if not principal.is_supervisor:
        stmt = stmt.where(or_(CannedResponse.team_id.is_(None),
                              CannedResponse.team_id.in_(principal.team_ids or {-1})))
    if team_id is not None:
        stmt = stmt.where(CannedResponse.team_id == team_id)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(CannedResponse.shortcut.like(like), CannedResponse.title.ilike(like),
                              CannedResponse.body.ilike(like)))
    return list((await session.execute(stmt)).scalars())


async def get_canned(session: AsyncSession, principal: Principal, canned_id: int) -> CannedResponse:
    row = await session.get(CannedResponse, canned_id)
    if row is None or not (principal.is_supervisor or row.team_id is None or row.team_id in principal.team_ids):
        raise not_found("canned_response", canned_id)
    return row
