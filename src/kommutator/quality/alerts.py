"""Raise an alert: record it, tell the people in the workspace, queue its deliveries to the destinations.

Who hears of an alert comes from the alert rule of its kind for the conversation's team (a rule with no
team serves teams without their own; with no rule at all, the responsible agent and the team's
supervisors). What goes outside (email, Telegram, a signed webhook …: ``quality/destinations/``) is
``alert_deliveries`` rows written in the same transaction, sent by ``quality/delivery.py``: a restart loses none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import or_, select

from kommutator.agents.models import TeamMember, User
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import AlertRaised
from kommutator.notifications.actions import do_notify
from kommutator.quality.destinations import base as destinations
from kommutator.quality.models import AlertDelivery, AlertRule, QualityAlert
from kommutator.quality.texts import lang_of

Render = Callable[[str], tuple[str, str]]  # language → (title, body) for a person in the workspace

SEVERITY = {"sla.warning": "warning", "sla.breach": "critical", "standard.violation": "warning",
            "csat.negative": "critical", "channel.failing": "critical", "channel.recovered": "info"}
# Without a rule: who hears of each kind (the agent, the team's supervisors).
DEFAULT_RECIPIENTS = {"sla.warning": (True, False), "sla.breach": (True, True), "standard.violation": (True, True),
             "csat.negative": (False, True),
             # Channel health (channels/health.py): the administrators, whom the caller names.
             "channel.failing": (False, False), "channel.recovered": (False, False)}


async def rule_for(tx: Tx, *, kind: str, team_id: int | None) -> AlertRule | None:
    """The team's own rule of this kind, else the rule for all teams, else None."""
    rows = (await tx.session.execute(
        select(AlertRule).where(AlertRule.kind == kind,
                                or_(AlertRule.team_id == team_id, AlertRule.team_id.is_(None))))).scalars().all()
    own = [r for r in rows if r.team_id is not None and r.team_id == team_id]
    chosen = own or [r for r in rows if r.team_id is None]
    return chosen[0] if chosen else None


async def supervisors_of(tx: Tx, team_id: int | None) -> list[int]:
    """Active supervisors (and administrators) in the team; every supervisor when the team has none."""
    base = select(User.id).where(User.active.is_(True), User.role.in_(("supervisor", "admin")))
    if team_id is not None:
        ids = list((await tx.session.execute(
            base.join(TeamMember, TeamMember.user_id == User.id).where(TeamMember.team_id == team_id))).scalars())
        if ids:
            return ids
    return list((await tx.session.execute(base.where(User.role == "supervisor"))).scalars())


async def do_raise_alert(tx: Tx, *, kind: str, title: str, body: str = "", conversation_id: int | None,
                         team_id: int | None, agent_id: int | None, user_ids: Iterable[int] = (),
                         emails: Iterable[str] = (), data: dict[str, Any] | None = None,
                         severity: str | None = None, render: Render | None = None) -> QualityAlert | None:
    """Record an alert and fan it out; None when the kind's rule is switched off for the team.

    ``title``/``body`` go to the alert's record, its emails and Telegram messages (whose reader's language is
    unknown); ``render(language)`` gives the (title, body) each person in the workspace gets, in the language of
    their interface (one language, not both)."""
    rule = await rule_for(tx, kind=kind, team_id=team_id)
    if rule is not None and not rule.enabled:
        return None
    to_agent, to_supervisors = ((rule.to_agent, rule.to_supervisors) if rule
                                else DEFAULT_RECIPIENTS.get(kind, (True, True)))
    people: list[int] = []
    if to_agent and agent_id is not None:
        people.append(agent_id)
    if to_supervisors:
        people.extend(await supervisors_of(tx, team_id))
    people.extend(rule.user_ids if rule else [])
    people.extend(user_ids)
    people = list(dict.fromkeys(people))
    # Outside the workspace: each registered destination says where this alert goes under the rule.
    extra = {"email": list(emails)}
    outside = {d.name: d.targets(rule, extra) for d in destinations.registered()}
    outside = {name: targets for name, targets in outside.items() if targets}
    level = severity or SEVERITY.get(kind, "warning")
    texts = {lang: dict(zip(("title", "body"), render(lang), strict=True)) for lang in ("en", "ru")} if render else {}
    recipients: dict[str, Any] = {"user_ids": people, "emails": outside.pop("email", [])}
    recipients.update(outside)
    alert = QualityAlert(kind=kind, severity=level, conversation_id=conversation_id, team_id=team_id,
                         agent_id=agent_id, title=title[:300], body=body, recipients=recipients,
                         data={**(data or {}), **({"texts": texts} if texts else {})}, created_at=now())
    tx.session.add(alert)
    await tx.session.flush()
    tx.publish(AlertRaised(alert_id=alert.id, alert_kind=kind, severity=level, conversation_id=conversation_id,
                           team_id=team_id, target=str((data or {}).get("target", ""))))
    if people and render is None:
        await do_notify(tx, user_ids=people, kind=kind, severity=level, title=title, body=body,
                        conversation_id=conversation_id, data={"alert_id": alert.id, **(data or {})})
    elif people and render is not None:
        locales = dict((await tx.session.execute(select(User.id, User.locale).where(User.id.in_(people)))).all())
        by_language: dict[str, list[int]] = {}
        for person in people:
            by_language.setdefault(lang_of(locales.get(person)), []).append(person)
        for language, ids in by_language.items():
            own_title, own_body = render(language)
            await do_notify(tx, user_ids=ids, kind=kind, severity=level, title=own_title, body=own_body,
                            conversation_id=conversation_id, data={"alert_id": alert.id, **(data or {})})
    # Each delivery in its reader's language: a user's own (an address that is a user's), else the rule's
    # (empty: both, for readers whose language nobody told us).
    ts = now()
    rule_language = (rule.language if rule else "") or ""
    mail_users: dict[str, str] = {}
    if recipients["emails"] and texts:
        mail_users = {m.lower(): lang_of(loc) for m, loc in (await tx.session.execute(
            select(User.email, User.locale).where(User.active.is_(True),
                                                  User.email.in_(recipients["emails"])))).all()}
    for name in ["email", *outside]:
        for target in (recipients["emails"] if name == "email" else outside[name]):
            language = (mail_users.get(target.lower(), rule_language) if name == "email" else rule_language)
            tx.session.add(AlertDelivery(alert_id=alert.id, rule_id=rule.id if rule else None, channel=name,
                                         target=target, language=language if texts else "", next_attempt_at=ts))
    return alert


def can_see_alert(principal: Principal, alert: QualityAlert) -> bool:
    """Supervisors see every alert; agents those of their teams and those addressed to them."""
    if principal.is_supervisor:
        return True
    return ((alert.team_id is not None and alert.team_id in principal.team_ids)
            or principal.user_id in (alert.recipients or {}).get("user_ids", []))


async def do_acknowledge(tx: Tx, principal: Principal, alert_id: int) -> QualityAlert:
    """Record who acknowledged the alert and when (the first acknowledgement stands)."""
    alert = await tx.session.get(QualityAlert, alert_id)
    if alert is None or not can_see_alert(principal, alert):
        raise not_found("alert", alert_id)
    if alert.acknowledged_at is not None:
        if alert.acknowledged_by == principal.user_id:
            return alert
        raise ProblemError(409, "alert_already_acknowledged",
                           f"Alert {alert_id} was acknowledged by user {alert.acknowledged_by} already.")
    alert.acknowledged_by, alert.acknowledged_at = principal.user_id, now()
    return alert
