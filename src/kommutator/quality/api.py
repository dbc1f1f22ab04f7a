"""/api/v1/quality: SLA policies, alert rules, standards, rating settings, alerts, the live view, whispers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.agents.models import User
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.contacts.policy import check_see as check_see_contact
from kommutator.errors import ProblemError, not_found
from kommutator.net.guard import OutboundGuard
from kommutator.quality import actions
from kommutator.quality.alerts import can_see_alert, do_acknowledge
from kommutator.quality.destinations import base as destinations
from kommutator.quality.live import live_view
from kommutator.quality.models import (
    AlertRule,
    CommunicationStandard,
    CsatSetting,
    QualityAlert,
    Rating,
    SlaClock,
    SlaPolicy,
    StandardViolation,
)
from kommutator.quality.queries import ratings_of, visible
from kommutator.quality.schemas import (
    AlertList,
    AlertRead,
    ClockRead,
    ConversationQuality,
    CsatRead,
    CsatWrite,
    LiveView,
    PolicyCreate,
    PolicyRead,
    PolicyUpdate,
    RatingRead,
    RuleCreate,
    RuleRead,
    RuleUpdate,
    StandardRead,
    StandardWrite,
    ViolationRead,
    WhisperCreate,
    WhisperCreated,
)
from kommutator.quality.texts import lang_of

# A team's or channel's id, or "default" (everyone else).
Scope = Annotated[str, Path(pattern=r"^(default|[1-9][0-9]{0,15})$", description="An id, or default")]

router = APIRouter(prefix="/quality", tags=["quality"], route_class=SafeRoute)


def _rule(r: AlertRule) -> RuleRead:
    return RuleRead(id=r.id, team_id=r.team_id, kind=r.kind, enabled=r.enabled, to_agent=r.to_agent,
                    to_supervisors=r.to_supervisors, user_ids=r.user_ids, emails=r.emails,
                    telegram_chat_id=r.telegram_chat_id, telegram_bot_token_set=bool(r.telegram_token),
                    threshold=r.threshold, language=r.language or "",
                    destinations={name: _shown(name, values) for name, values in (r.destinations or {}).items()})


def _shown(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A destination's settings as the API shows them: each secret only as whether it is set."""
    found = destinations.get(name)
    secrets = found.secret_fields if found else ()
    shown = {k: v for k, v in values.items() if k not in secrets}
    shown.update({f"{k}_set": bool(values.get(k)) for k in secrets})
    return shown


async def _language(s: AsyncSession, user_id: int) -> str:
    return lang_of(await s.scalar(select(User.locale).where(User.id == user_id)))


def _alert(a: QualityAlert, language: str) -> AlertRead:
    """The alert with its title and body in the reader's language (kept in ``data.texts``; older alerts as
    recorded)."""
    read = AlertRead.model_validate(a)
    own = ((a.data or {}).get("texts") or {}).get(language)
    if isinstance(own, dict) and own.get("title"):
        return read.model_copy(update={"title": str(own["title"]), "body": str(own.get("body") or own["title"])})
    return read


# --- SLA policies -----------------------------------------------------------------------------------------

@router.get("/policies", response_model=list[PolicyRead])
async def list_policies(rt: RuntimeDep, principal: CurrentPrincipal) -> list[PolicyRead]:
    """Every SLA policy, in the order they are tried."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        rows = (await s.execute(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id))).scalars()
        return [PolicyRead.model_validate(p) for p in rows]


@router.post("/policies", response_model=PolicyRead, status_code=201)
async def create_policy(rt: RuntimeDep, principal: CurrentPrincipal, body: PolicyCreate) -> PolicyRead:
    """A new SLA policy (supervisors)."""
    return PolicyRead.model_validate(await rt.db.write(lambda tx: actions.do_save_policy(tx, principal, body)))


@router.patch("/policies/{policy_id}", response_model=PolicyRead)
async def update_policy(rt: RuntimeDep, principal: CurrentPrincipal, policy_id: Id, body: PolicyUpdate) -> PolicyRead:
    """Change an SLA policy (supervisors)."""
    return PolicyRead.model_validate(
        await rt.db.write(lambda tx: actions.do_save_policy(tx, principal, body, policy_id)))


@router.delete("/policies/{policy_id}", status_code=204)
async def delete_policy(rt: RuntimeDep, principal: CurrentPrincipal, policy_id: Id) -> None:
    """Delete an SLA policy; its clocks stop at the conversations' next change."""
    await rt.db.write(lambda tx: actions.do_delete_policy(tx, principal, policy_id))


# --- Alert rules ------------------------------------------------------------------------------------------

@router.get("/rules", response_model=list[RuleRead])
async def list_rules(rt: RuntimeDep, principal: CurrentPrincipal,
                     team_id: int | None = Query(None, ge=1, le=MAX_ID)) -> list[RuleRead]:
    """Alert rules (of one team with ``team_id``); Telegram bot tokens are never shown."""
    principal.require_supervisor()
    stmt = select(AlertRule).order_by(AlertRule.team_id, AlertRule.kind)
    if team_id is not None:
        stmt = stmt.where(AlertRule.team_id == team_id)
    async with rt.db.read() as s:
        return [_rule(r) for r in (await s.execute(stmt)).scalars()]


@router.post("/rules", response_model=RuleRead, status_code=201)
async def create_rule(rt: RuntimeDep, principal: CurrentPrincipal, body: RuleCreate) -> RuleRead:
    """Who hears of one kind of alert in a team (supervisors)."""
    principal.require_supervisor()
    await actions.check_destination_targets(OutboundGuard(rt.settings.outbound_allow_hosts), body.destinations)
    return _rule(await rt.db.write(lambda tx: actions.do_save_rule(tx, principal, rt.box, body)))


@router.patch("/rules/{rule_id}", response_model=RuleRead)
async def update_rule(rt: RuntimeDep, principal: CurrentPrincipal, rule_id: Id, body: RuleUpdate) -> RuleRead:
    principal.require_supervisor()
    await actions.check_destination_targets(OutboundGuard(rt.settings.outbound_allow_hosts), body.destinations)
    return _rule(await rt.db.write(lambda tx: actions.do_save_rule(tx, principal, rt.box, body, rule_id)))


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rt: RuntimeDep, principal: CurrentPrincipal, rule_id: Id) -> None:
    await rt.db.write(lambda tx: actions.do_delete_rule(tx, principal, rule_id))


# --- Communication standards and rating settings -------------------------------------------------------

@router.get("/standards", response_model=list[StandardRead])
async def list_standards(rt: RuntimeDep, principal: CurrentPrincipal) -> list[StandardRead]:
    principal.require_supervisor()
    async with rt.db.read() as s:
        rows = (await s.execute(select(CommunicationStandard).order_by(CommunicationStandard.id))).scalars()
        return [StandardRead.model_validate(r) for r in rows]


@router.put("/standards/{scope}", response_model=StandardRead)
async def put_standard(rt: RuntimeDep, principal: CurrentPrincipal, scope: Scope, body: StandardWrite) -> StandardRead:
    """Set the standard of a team (``scope`` = its id) or of everyone else (``scope`` = default)."""
    team_id = _scope(scope, "team")
    return StandardRead.model_validate(
        await rt.db.write(lambda tx: actions.do_save_standard(tx, principal, team_id, body)))


@router.get("/csat", response_model=list[CsatRead])
async def list_csat(rt: RuntimeDep, principal: CurrentPrincipal) -> list[CsatRead]:
    principal.require_supervisor()
    async with rt.db.read() as s:
        rows = (await s.execute(select(CsatSetting).order_by(CsatSetting.id))).scalars()
        return [CsatRead.model_validate(r) for r in rows]


@router.put("/csat/{scope}", response_model=CsatRead)
async def put_csat(rt: RuntimeDep, principal: CurrentPrincipal, scope: Scope, body: CsatWrite) -> CsatRead:
    """Whether customers of a channel (``scope`` = its id, or default) are asked to rate, and on which scale."""
    channel_id = _scope(scope, "channel")
    return CsatRead.model_validate(await rt.db.write(lambda tx: actions.do_save_csat(tx, principal, channel_id, body)))


def _scope(scope: str, what: str) -> int | None:  # the pattern of Scope documents it; this checks the range
    if scope == "default":
        return None
    if scope.isdigit() and 1 <= int(scope) <= MAX_ID:
        return int(scope)
    raise ProblemError(422, "invalid_scope", f"Use a {what} id or 'default' in the path, not {scope!r}.")


# --- Alerts -----------------------------------------------------------------------------------------------

@router.get("/alerts", response_model=AlertList)
async def list_alerts(rt: RuntimeDep, principal: CurrentPrincipal, unacknowledged: bool = False,
                      conversation_id: int | None = Query(None, ge=1, le=MAX_ID),
                      limit: int = Query(50, ge=1, le=200)) -> AlertList:
    """Alerts I may see, newest first: supervisors all, agents those of their teams or addressed to them."""
    stmt = select(QualityAlert).order_by(QualityAlert.id.desc())
    if not principal.is_supervisor:
        # Team alerts by index; the few addressed to the agent personally are filtered in Python below.
        stmt = stmt.where(or_(QualityAlert.team_id.in_(principal.team_ids or {0}),
                              QualityAlert.agent_id == principal.user_id, QualityAlert.team_id.is_(None)))
    if unacknowledged:
        stmt = stmt.where(QualityAlert.acknowledged_at.is_(None))
    if conversation_id is not None:
        stmt = stmt.where(QualityAlert.conversation_id == conversation_id)
    async with rt.db.read() as s:
        rows = [a for a in (await s.execute(stmt.limit(limit * 4))).scalars() if can_see_alert(principal, a)]
        language = await _language(s, principal.user_id)
    items = rows[:limit]
    return AlertList(items=[_alert(a, language) for a in items],
                     unacknowledged=sum(1 for a in rows if a.acknowledged_at is None))


@router.post("/alerts/{alert_id}/ack", response_model=AlertRead)
async def acknowledge_alert(rt: RuntimeDep, principal: CurrentPrincipal, alert_id: Id) -> AlertRead:
    """Acknowledge an alert: who and when are recorded (404 for an alert I may not see)."""
    alert = await rt.db.write(lambda tx: do_acknowledge(tx, principal, alert_id))
    async with rt.db.read() as s:
        return _alert(alert, await _language(s, principal.user_id))


# --- Live view, a conversation's quality, whispers, ratings ---------------------------------------------

@router.get("/live", response_model=LiveView)
async def live(rt: RuntimeDep, principal: CurrentPrincipal,
               team_id: int | None = Query(None, ge=1, le=MAX_ID)) -> dict[str, Any]:
    """Queues (waiting, longest wait, service level today), agents (presence, load, time since last reply)
    and the conversations nearest to a missed deadline first (supervisors)."""
    principal.require_supervisor()
    async with rt.db.read() as s:
        return await live_view(s, team_id=team_id)


@router.get("/conversations/{conversation_id}", response_model=ConversationQuality)
async def conversation_quality(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id) -> ConversationQuality:
    """A conversation's SLA clocks, standards deviations, rating and alerts."""
    async with rt.db.read() as s:
        if not await visible(s, principal, conversation_id):
            raise not_found("conversation", conversation_id)
        clocks = (await s.execute(select(SlaClock).where(SlaClock.conversation_id == conversation_id)
                                  .order_by(SlaClock.id))).scalars()
        violations = (await s.execute(select(StandardViolation).where(
            StandardViolation.conversation_id == conversation_id).order_by(StandardViolation.id))).scalars()
        rating = await s.scalar(select(Rating).where(Rating.conversation_id == conversation_id))
        alerts = (await s.execute(select(QualityAlert).where(QualityAlert.conversation_id == conversation_id)
                                  .order_by(QualityAlert.id))).scalars()
        language = await _language(s, principal.user_id)
        return ConversationQuality(
            clocks=[ClockRead.model_validate(c) for c in clocks],
            violations=[ViolationRead.model_validate(v) for v in violations],
            rating=RatingRead.model_validate(rating) if rating else None,
            alerts=[_alert(a, language) for a in alerts if can_see_alert(principal, a)])


@router.post("/conversations/{conversation_id}/whisper", status_code=201, response_model=WhisperCreated)
async def whisper(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                  body: WhisperCreate) -> dict[str, int]:
    """A private note to the assigned agent only (supervisors); the agent is notified."""
    msg = await rt.db.write(lambda tx: actions.do_whisper(tx, principal, conversation_id, body.text))
    return {"message_id": msg.id}


@router.get("/contacts/{contact_id}/ratings", response_model=list[RatingRead])
async def contact_ratings(rt: RuntimeDep, principal: CurrentPrincipal, contact_id: Id) -> list[RatingRead]:
    """The customer's past ratings, newest first (those of conversations I may see)."""
    async with rt.db.read() as s:
        await check_see_contact(s, principal, contact_id)  # 404 unless the caller may see the contact
        return [RatingRead.model_validate(r) for r in await ratings_of(s, principal, contact_id)]
