"""Supervisors' changes to quality settings (policies, alert rules, standards, rating questions) and whispers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy import select

from kommutator.agents.models import Team, User
from kommutator.audit.actions import do_audit
from kommutator.auth.principal import Principal
from kommutator.channels.models import Channel
from kommutator.clock import now
from kommutator.conversations.actions import get_visible_conversation
from kommutator.conversations.models import Message
from kommutator.crypto import SecretBox
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import MessageCreated
from kommutator.net.guard import OutboundGuard, refusal_at_save
from kommutator.notifications.actions import do_notify
from kommutator.quality.alerts import DEFAULT_RECIPIENTS
from kommutator.quality.destinations import base as destinations
from kommutator.quality.models import AlertRule, CommunicationStandard, CsatSetting, SlaPolicy
from kommutator.quality.schemas import (
    CsatWrite,
    PolicyCreate,
    PolicyUpdate,
    RuleCreate,
    RuleUpdate,
    StandardWrite,
)


async def _check_users(tx: Tx, ids: list[int] | None, field: str) -> None:
    for uid in ids or []:
        user = await tx.session.get(User, uid)
        if user is None or not user.active:
            raise ProblemError(422, "user_not_found", f"{field}: {uid} is not an active user.")


async def _check_team(tx: Tx, team_id: int | None) -> None:
    if team_id is not None and await tx.session.get(Team, team_id) is None:
        raise ProblemError(422, "team_not_found", f"team_id: there is no team with id {team_id}.")


async def do_save_policy(tx: Tx, principal: Principal, data: PolicyCreate | PolicyUpdate,
                         policy_id: int | None = None) -> SlaPolicy:
    """Create or change an SLA policy; running clocks follow the new targets at the next change."""
    principal.require_supervisor()
    fields = data.model_dump(exclude_unset=True)
    await _check_users(tx, fields.get("notify_user_ids"), "notify_user_ids")
    name = fields.get("name")
    if name is not None and await tx.session.scalar(
            select(SlaPolicy.id).where(SlaPolicy.name == name, SlaPolicy.id != (policy_id or 0))) is not None:
        raise ProblemError(409, "policy_name_taken", f"There is already a policy named {name!r}; choose another.")
    if policy_id is None:
        policy = SlaPolicy(created_at=now(), updated_at=now(), clock="wall", warn_percent=80, position=0,
                           enabled=True, queue_ids=[], channel_types=[], channel_ids=[], contact_attributes={},
                           priority_factors={}, notify_user_ids=[], notify_emails=[])
    else:
        found = await tx.session.get(SlaPolicy, policy_id)
        if found is None:
            raise not_found("sla_policy", policy_id)
        policy = found
    for key, value in fields.items():
        if value is not None or key in ("business_hours",):
            setattr(policy, key, value)
    targets = (policy.first_response_seconds, policy.next_response_seconds, policy.resolution_seconds)
    if not any(targets):
        raise ProblemError(422, "policy_without_targets",
                           "Set at least one of first_response_seconds, next_response_seconds, resolution_seconds.")
    policy.updated_at = now()
    tx.session.add(policy)
    await tx.session.flush()
    do_audit(tx, principal, "sla_policy.saved", "sla_policy", policy.id, detail=fields)
    return policy


async def do_delete_policy(tx: Tx, principal: Principal, policy_id: int) -> None:
    principal.require_supervisor()
    policy = await tx.session.get(SlaPolicy, policy_id)
    if policy is None:
        raise not_found("sla_policy", policy_id)
    await tx.session.delete(policy)
    do_audit(tx, principal, "sla_policy.deleted", "sla_policy", policy_id, detail={"name": policy.name})


async def do_save_rule(tx: Tx, principal: Principal, box: SecretBox, data: RuleCreate | RuleUpdate,
                       rule_id: int | None = None) -> AlertRule:
    """Create or change who hears of one kind of alert in a team; the bot token is stored encrypted."""
    principal.require_supervisor()
    fields = data.model_dump(exclude_unset=True)
    await _check_users(tx, fields.get("user_ids"), "user_ids")
    if isinstance(data, RuleCreate):
        await _check_team(tx, data.team_id)
        taken = await tx.session.scalar(select(AlertRule.id).where(
            AlertRule.kind == data.kind,
            AlertRule.team_id.is_(None) if data.team_id is None else AlertRule.team_id == data.team_id))
        if taken is not None:
            raise ProblemError(409, "rule_exists",
                               f"Rule {taken} already covers {data.kind} for this team; change it instead.")
        to_agent, to_supervisors = DEFAULT_RECIPIENTS[data.kind]
        rule = AlertRule(team_id=data.team_id, kind=data.kind, created_at=now(), to_agent=to_agent,
                         to_supervisors=to_supervisors, enabled=True, user_ids=[], emails=[], telegram_chat_id="",
                         telegram_token="")
        tx.session.add(rule)
    else:
        found = await tx.session.get(AlertRule, rule_id)
        if found is None:
            raise not_found("alert_rule", rule_id)
        rule = found
    token = fields.pop("telegram_bot_token", None)
    fields.pop("team_id", None)
    fields.pop("kind", None)
    wanted = fields.pop("destinations", None)
    if wanted is not None:
        rule.destinations = destination_settings(box, rule.destinations or {}, wanted)
    for key, value in fields.items():
        if value is not None or key == "threshold":
            setattr(rule, key, value)
    if token is not None:
        rule.telegram_token = box.encrypt({"token": token}) if token else ""
    rule.updated_at = now()
    await tx.session.flush()
    do_audit(tx, principal, "alert_rule.saved", "alert_rule", rule.id,
                    detail={**fields, "telegram_bot_token": "set" if token else ("removed" if token == "" else None),
                            "destinations": sorted(wanted) if wanted is not None else None})
    return rule


def destination_settings(box: SecretBox, stored: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The rule's new destination settings: each validated by its destination's model (422 for an unknown name),
    secrets encrypted, a secret left out kept, an empty object removing the destination."""
    result = dict(stored)
    for name, value in wanted.items():
        destination = destinations.get(name)
        if destination is None or destination.settings_model is None:
            known = sorted(d.name for d in destinations.registered() if d.settings_model is not None)
            raise ProblemError(422, "unknown_destination",
                               f"destinations.{name}: no alert destination by that name takes settings; "
                               f"known: {', '.join(known)}.")
        if not value:
            result.pop(name, None)
            continue
        old = stored.get(name) or {}
        merged = {**{k: v for k, v in old.items() if k not in destination.secret_fields}, **value}
        try:
            valid = destination.settings_model.model_validate(merged).model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            errors = [{"field": f"destinations.{name}." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                      for e in exc.errors()]
            raise ProblemError(422, "validation_failed", f"{errors[0]['field']}: {errors[0]['message']}",
                               errors=errors) from None
        for secret in destination.secret_fields:
            if valid.get(secret):
                valid[secret] = box.encrypt({"value": valid[secret]})
            elif secret not in value and old.get(secret):
                valid[secret] = old[secret]
        result[name] = valid
    return result


async def check_destination_targets(guard: OutboundGuard, wanted: dict[str, Any] | None) -> None:
    """422 outbound_target_refused when a destination's URL is a special address the configuration does not allow
    (a convenience at save; the guard refuses it again at connect time)."""
    errors = []
    for name, value in (wanted or {}).items():
        destination = destinations.get(name)
        if destination is None or not isinstance(value, dict):
            continue
        for url in destination.outbound_targets(value):
            parts = urlsplit(url)
            if not parts.hostname:
                continue
            refused = await refusal_at_save(guard, parts.hostname, parts.port or (443 if parts.scheme == "https"
                                                                                   else 80))
            if refused is not None:
                errors.append({"field": f"destinations.{name}.url", "message": refused.reason})
    if errors:
        raise ProblemError(422, "outbound_target_refused", f"{errors[0]['field']}: {errors[0]['message']}",
                           errors=errors)


async def do_delete_rule(tx: Tx, principal: Principal, rule_id: int) -> None:
    principal.require_supervisor()
    rule = await tx.session.get(AlertRule, rule_id)
    if rule is None:
        raise not_found("alert_rule", rule_id)
    await tx.session.delete(rule)
    do_audit(tx, principal, "alert_rule.deleted", "alert_rule", rule_id, detail={"kind": rule.kind})


async def do_save_standard(tx: Tx, principal: Principal, team_id: int | None,
                           data: StandardWrite) -> CommunicationStandard:
    """Set the communication standard of a team (team_id None: of everyone without one)."""
    principal.require_supervisor()
    await _check_team(tx, team_id)
    row = await tx.session.scalar(select(CommunicationStandard).where(
        CommunicationStandard.team_id.is_(None) if team_id is None else CommunicationStandard.team_id == team_id))
    if row is None:
        row = CommunicationStandard(team_id=team_id)
        tx.session.add(row)
    for key, value in data.model_dump().items():
        setattr(row, key, {k: [p for p in v if p.strip()] for k, v in value.items()}
                if key in ("greetings", "forbidden") else value)
    row.updated_at = now()
    await tx.session.flush()
    do_audit(tx, principal, "standard.saved", "communication_standard", row.id, detail={"team_id": team_id})
    return row


async def do_save_csat(tx: Tx, principal: Principal, channel_id: int | None, data: CsatWrite) -> CsatSetting:
    """Set whether and how customers are asked to rate (per channel; channel_id None: the default)."""
    principal.require_supervisor()
    if channel_id is not None and await tx.session.get(Channel, channel_id) is None:
        raise ProblemError(422, "channel_not_found", f"There is no channel with id {channel_id}.")
    row = await tx.session.scalar(select(CsatSetting).where(
        CsatSetting.channel_id.is_(None) if channel_id is None else CsatSetting.channel_id == channel_id))
    if row is None:
        row = CsatSetting(channel_id=channel_id)
        tx.session.add(row)
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    await tx.session.flush()
    do_audit(tx, principal, "csat_setting.saved", "csat_setting", row.id, detail=data.model_dump())
    return row


async def do_whisper(tx: Tx, principal: Principal, conversation_id: int, text: str) -> Message:
    """A supervisor's private note to the assigned agent (never sent to the customer), with a notification."""
    principal.require_supervisor()
    conv = await get_visible_conversation(tx, principal, conversation_id)
    if conv.assignee_id is None:
        raise ProblemError(409, "no_assignee", "Nobody is assigned to this conversation; assign it first.")
    ts = now()
    msg = Message(conversation_id=conv.id, direction="internal", sender_type="agent",
                  sender_user_id=principal.user_id, kind="note", text=text, status="received", created_at=ts,
                  payload={"whisper_to": conv.assignee_id})
    tx.session.add(msg)
    await tx.session.flush()
    await do_notify(tx, user_ids=[conv.assignee_id], kind="supervisor.whisper", severity="info",
                    title=f"{principal.name}: {text[:200]}", body=text, conversation_id=conv.id,
                    data={"message_id": msg.id})
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction="internal", sender_type="agent", message_kind="note"))
    return msg
