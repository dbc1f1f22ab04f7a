"""Proactive invitations on the website: the widget reports each one it showed and each one a visitor accepted;
supervisors read the counts in the channel's stats (GET /api/v1/channels/{id}/stats)."""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.channels.models import Channel
from kommutator.channels.types.webchat.api import Authorization, _chat, _rt, router
from kommutator.channels.types.webchat.models import WebchatInvitationStat
from kommutator.channels.types.webchat.schemas import ChannelStats
from kommutator.channels.types.webchat.settings import WebchatSettings
from kommutator.channels.types.webchat.visitors import CHANNEL_TYPE, authenticate_visitor, check_rate
from kommutator.clock import now
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import Id
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found

_stats = cast(Table, WebchatInvitationStat.__table__)
admin_router = APIRouter(prefix="/api/v1", tags=["channels"], route_class=SafeRoute)


async def _count(tx: Tx, channel_id: int, invitation_id: str, event: str) -> None:
    """One more show or acceptance: an upsert, so concurrent reports never lose a count."""
    ins = postgresql.insert if tx.conn.dialect.name == "postgresql" else sqlite.insert
    ts = now()
    first = {"shown": int(event == "shown"), "accepted": int(event == "accepted")}
    stmt = ins(_stats).values(channel_id=channel_id, invitation_id=invitation_id, updated_at=ts, **first)
    stmt = stmt.on_conflict_do_update(index_elements=[_stats.c.channel_id, _stats.c.invitation_id],
                                      set_={event: _stats.c[event] + 1, "updated_at": ts})
    await tx.conn.execute(stmt)


@router.post("/widget/{channel_id}/invitations/{invitation_id}/{event}", status_code=204, response_class=Response)
async def report_invitation(request: Request, channel_id: Id, event: Literal["shown", "accepted"],
                            invitation_id: str = PathParam(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"),
                            authorization: Authorization = None) -> Response:
    """The widget showed an invitation, or the visitor accepted it (opened the chat from it)."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    await check_rate(rt, "message", visitor.external_id)
    if not any(i.id == invitation_id for i in chat.settings.invitations):
        raise ProblemError(404, "invitation_not_found", f"The chat has no invitation {invitation_id!r}.")
    await rt.db.write(lambda tx: _count(tx, chat.id, invitation_id, event))
    return Response(status_code=204)


@admin_router.get("/channels/{channel_id}/stats", response_model=ChannelStats)
async def channel_stats(rt: RuntimeDep, principal: CurrentPrincipal, channel_id: Id) -> dict[str, Any]:
    """How the channel's proactive invitations do: shown, accepted, the share accepted (supervisors and
    administrators)."""
    if not principal.is_supervisor:
        raise ProblemError(403, "supervisor_required", "Only a supervisor or administrator may read channel stats.")
    async with rt.db.read() as s:
        channel = await s.get(Channel, channel_id)
        if channel is None:
            raise not_found("channel", channel_id)
        counted = {r.invitation_id: r for r in (await s.execute(
            select(WebchatInvitationStat).where(WebchatInvitationStat.channel_id == channel_id))).scalars()}
    invitations = WebchatSettings.model_validate(channel.settings).invitations if channel.type == CHANNEL_TYPE else []
    out = []
    for inv in invitations:
        row = counted.pop(inv.id, None)
        out.append(_stat(inv.id, inv.text_en, inv.text_ru, inv.enabled, row))
    out += [_stat(key, "", "", False, row) for key, row in sorted(counted.items())]
    return {"channel_id": channel_id, "invitations": out}


def _stat(key: str, en: str, ru: str, enabled: bool, row: WebchatInvitationStat | None) -> dict[str, Any]:
    shown, accepted = (row.shown, row.accepted) if row is not None else (0, 0)
    return {"id": key, "text_en": en, "text_ru": ru, "enabled": enabled, "shown": shown, "accepted": accepted,
            "acceptance_rate": round(accepted / shown, 4) if shown else None}
