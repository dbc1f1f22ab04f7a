"""Changes to canned responses (supervisors and administrators)."""

from __future__ import annotations

from sqlalchemy import func, select

from kommutator.agents.models import Team
from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.canned.models import CannedResponse
from kommutator.canned.schemas import CannedCreate, CannedUpdate
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import CannedChanged


def _teams(*team_ids: int | None) -> tuple[int, ...]:
    """The teams a change concerns; empty when the response was or is everyone's (then everybody hears of it)."""
    if any(t is None for t in team_ids):
        return ()
    return tuple(sorted({t for t in team_ids if t is not None}))


async def check_shortcut_free(tx: Tx, shortcut: str, team_id: int | None, *, except_id: int | None = None) -> None:
    """One shortcut means one answer for anybody: unique among the global ones and the team's."""
    stmt = select(func.count()).select_from(CannedResponse).where(CannedResponse.shortcut == shortcut)
    if team_id is not None:  # a global one checks every team's: it would shadow theirs
        stmt = stmt.where((CannedResponse.team_id == team_id) | CannedResponse.team_id.is_(None))
    if except_id is not None:
        stmt = stmt.where(CannedResponse.id != except_id)
    if await tx.session.scalar(stmt):
        raise ProblemError(409, "shortcut_taken",
                           f"shortcut: /{shortcut} is already used by another canned response; choose another.")


async def check_team(tx: Tx, team_id: int | None) -> None:
    if team_id is not None and await tx.session.get(Team, team_id) is None:
        raise ProblemError(422, "team_not_found", f"team_id: there is no team with id {team_id}.")


async def do_create_canned(tx: Tx, principal: Principal, data: CannedCreate) -> CannedResponse:
    principal.require_supervisor()
    await check_team(tx, data.team_id)
    await check_shortcut_free(tx, data.shortcut, data.team_id)
    ts = now()
    row = CannedResponse(team_id=data.team_id, shortcut=data.shortcut, title=data.title, body=data.body,
                         created_by_id=principal.user_id, created_at=ts, updated_at=ts)
    tx.session.add(row)
    await tx.session.flush()
    do_audit(tx, principal, "canned.created", "canned_response", row.id, shortcut=data.shortcut)
    tx.publish(CannedChanged(canned_id=row.id, action="created", team_ids=_teams(row.team_id)))
    return row


async def do_update_canned(tx: Tx, principal: Principal, canned_id: int, data: CannedUpdate) -> CannedResponse:
    principal.require_supervisor()
    row = await tx.session.get(CannedResponse, canned_id)
    if row is None:
        raise not_found("canned_response", canned_id)
    fields = data.model_dump(exclude_unset=True)
    for key in ("shortcut", "title", "body"):
        if key in fields and fields[key] is None:
            raise ProblemError(422, "validation_failed", f"{key}: may not be null.")
    team_id = fields.get("team_id", row.team_id)
    before_team = row.team_id
    await check_team(tx, team_id)
    if "shortcut" in fields or "team_id" in fields:
        await check_shortcut_free(tx, fields.get("shortcut") or row.shortcut, team_id, except_id=row.id)
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now()
    do_audit(tx, principal, "canned.updated", "canned_response", row.id, fields=sorted(fields))
    tx.publish(CannedChanged(canned_id=row.id, action="updated", team_ids=_teams(before_team, row.team_id)))
    return row


async def do_delete_canned(tx: Tx, principal: Principal, canned_id: int) -> None:
    principal.require_supervisor()
    row = await tx.session.get(CannedResponse, canned_id)
    if row is None:
        raise not_found("canned_response", canned_id)
    await tx.session.delete(row)
    do_audit(tx, principal, "canned.deleted", "canned_response", canned_id, shortcut=row.shortcut)
    tx.publish(CannedChanged(canned_id=canned_id, action="deleted", team_ids=_teams(row.team_id)))
