"""/api/v1/canned-responses: saved replies; agents read them, supervisors and administrators edit them."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.canned import actions, queries
from kommutator.canned.schemas import CannedCreate, CannedRead, CannedUpdate
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id

router = APIRouter(tags=["canned responses"], route_class=SafeRoute)


@router.get("/canned-responses", response_model=list[CannedRead])
async def list_canned(rt: RuntimeDep, principal: CurrentPrincipal,
                      q: str = Query("", max_length=200, description="Part of the shortcut, title or text"),
                      team_id: int | None = Query(None, ge=1, le=MAX_ID)) -> list[CannedRead]:
    """The canned responses you may use (global ones and your teams'), by shortcut."""
    async with rt.db.read() as s:
        rows = await queries.list_canned(s, principal, q=q.strip(), team_id=team_id)
    return [CannedRead.model_validate(r) for r in rows]


@router.post("/canned-responses", response_model=CannedRead, status_code=201)
async def create_canned(rt: RuntimeDep, principal: CurrentPrincipal, body: CannedCreate) -> CannedRead:
    """Save a reply (supervisors and administrators); team_id limits it to one team."""
    principal.require_supervisor()
    return CannedRead.model_validate(await rt.db.write(lambda tx: actions.do_create_canned(tx, principal, body)))


@router.get("/canned-responses/{canned_id}", response_model=CannedRead)
async def get_canned(rt: RuntimeDep, principal: CurrentPrincipal, canned_id: Id) -> CannedRead:
    async with rt.db.read() as s:
        return CannedRead.model_validate(await queries.get_canned(s, principal, canned_id))


@router.patch("/canned-responses/{canned_id}", response_model=CannedRead)
async def update_canned(rt: RuntimeDep, principal: CurrentPrincipal, canned_id: Id,
                        body: CannedUpdate) -> CannedRead:
    principal.require_supervisor()
    row = await rt.db.write(lambda tx: actions.do_update_canned(tx, principal, canned_id, body))
    return CannedRead.model_validate(row)


@router.delete("/canned-responses/{canned_id}", status_code=204)
async def delete_canned(rt: RuntimeDep, principal: CurrentPrincipal, canned_id: Id) -> Response:
    principal.require_supervisor()
    await rt.db.write(lambda tx: actions.do_delete_canned(tx, principal, canned_id))
    return Response(status_code=204)
