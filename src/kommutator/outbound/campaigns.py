"""Campaigns: one message to the contacts of saved segments, each contact once (docs/outbound.md, Campaigns).

Starting a campaign writes one ``campaign_recipients`` row per contact of its segments' union (the key
``c<campaign>-<contact>`` is unique). The campaign worker (outbound/campaign_worker.py) then takes due pending
rows a few at a time and, for each, in ONE transaction: checks consent (marketing or service) and the channel's
rule exactly as a notification does, writes the message and its outbox row (priority 1: behind agents' replies)
and moves the row to ``queued`` — or to ``skipped`` with its reason. A crash before that commit leaves the row
pending (nothing was written); after it, the row is queued and is never taken again: a restart resumes without a
second message. A contact inside their quiet hours (the ``timezone`` attribute, else the campaign's) is moved to
the end of them, not skipped.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from sqlalchemy import and_, exists, func, insert, select, update

from kommutator.auth.principal import Principal
from kommutator.channels.base import Draft, TemplateUse
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations import lifecycle
from kommutator.conversations.models import Message
from kommutator.db import Tx
from kommutator.errors import not_found
from kommutator.events import CampaignStatusChanged
from kommutator.ingest.models import Channel
from kommutator.outbound.actions import (
    _open_conversation,
    _remember_identity,
    candidates,
    choose_route,
    queue_message,
)
from kommutator.outbound.models import Campaign, CampaignRecipient, MessageTemplate, Segment
from kommutator.outbound.schemas import CampaignCreate, CampaignStats, CampaignUpdate
from kommutator.outbound.segments import audience
from kommutator.outbound.texts import problem
from kommutator.workers.models import OutboxItem

# {{name}}, {{first_name}}, {{email}}, {{phone}}, or an attribute; {{city|your city}} gives a default.
FIELD = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*(?:\|([^}]*))?\}\}")
BUILT_IN = {"name", "first_name", "email", "phone"}
CAMPAIGN_PRIORITY = 1  # outbox claim order: 0 (agents' replies, notifications) goes first
_CONSENT_CODES = {"no_consent", "no_marketing_consent"}


# --- Pure helpers ------------------------------------------------------------------------------------------------

def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in FIELD.finditer(text)}


def required_attributes(texts: list[str]) -> set[str]:
    """Attribute placeholders without a default: every contact of the audience needs a value for them."""
    return {m.group(1) for t in texts for m in FIELD.finditer(t) if m.group(2) is None and m.group(1) not in BUILT_IN}


def fill(text: str, contact: Contact) -> str:
    attrs = contact.attributes or {}
    name = (contact.name or "").strip()

    def value(m: re.Match[str]) -> str:
        key, default = m.group(1), m.group(2)
        got: Any = {"name": name, "first_name": name.split()[0] if name else "", "email": contact.email or "",
                    "phone": contact.phone or ""}.get(key) if key in BUILT_IN else attrs.get(key)
        got = "" if got is None else str(got)
        return got if got.strip() else (default or "").strip()

    return FIELD.sub(value, text)


def next_allowed(at: dt.datetime, tz: dt.tzinfo, quiet_from: int, quiet_to: int) -> dt.datetime:
    """``at`` when it is outside the quiet hours [quiet_from, quiet_to) of local time in ``tz``; else the end of
    them (the quiet hours may run over midnight: 21 → 9)."""
    if quiet_from == quiet_to:
        return at
    local = at.astimezone(tz)
    h = local.hour
    inside = (h >= quiet_from or h < quiet_to) if quiet_from > quiet_to else quiet_from <= h < quiet_to
    if not inside:
        return at
    end = local.replace(hour=quiet_to, minute=0, second=0, microsecond=0)
    if end <= local:
        end = (local + dt.timedelta(days=1)).replace(hour=quiet_to, minute=0, second=0, microsecond=0)
    return end.astimezone(dt.UTC)


def zone(name: str | None, fallback: dt.tzinfo) -> dt.tzinfo:
    if not name:
        return fallback
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return fallback


def skip_reason(skipped: list[dict[str, Any]]) -> str:
    """One reason for the stats: a channel rule that refused where consent allowed, else no consent."""
    rules = [str(s.get("code", "")) for s in skipped if s.get("code") not in _CONSENT_CODES]
    if "whatsapp_template_required" in rules:
        return "window_closed"
    if skipped and not rules:
        return "no_consent"
    return "no_reachable_channel"


# --- Creating and steering ---------------------------------------------------------------------------------------

async def _check(tx: Tx, data: CampaignCreate, language: str) -> None:
    for segment_id in data.segment_ids:
        if await tx.session.get(Segment, segment_id) is None:
            raise problem(422, "campaign_segment_not_found", language, field="segment_ids", segment=segment_id)
    texts = {k: v for k, v in data.texts.items() if v.strip()}
    if not texts and not data.template:
        raise problem(422, "campaign_text_required", language, field="texts")
    if len({frozenset(placeholders(t)) for t in texts.values()}) > 1:
        shown = "; ".join(f"{k}: {', '.join(sorted(placeholders(v))) or '-'}" for k, v in sorted(texts.items()))
        raise problem(422, "campaign_placeholders_mismatch", language, field="texts", languages=shown)
    try:
        zoneinfo.ZoneInfo(data.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise problem(422, "campaign_timezone_unknown", language, field="timezone", timezone=data.timezone) from None
    if data.channel != "preferred":
        enabled = list((await tx.session.execute(select(Channel.id, Channel.type).where(Channel.enabled.is_(True))))
                       .all())
        if not any(str(i) == data.channel or t == data.channel for i, t in enabled):
            raise problem(422, "channel_not_found", language, field="channel", channel=data.channel)
    if data.template:
        rows = list((await tx.session.execute(select(MessageTemplate).where(MessageTemplate.name == data.template)))
                    .scalars())
        if not rows:
            raise problem(422, "template_not_found", language, field="template", template=data.template,
                          template_language="any")
        params = set(rows[0].parameters)
        missing = sorted(p for p in params if not data.parameters.get(p, "").strip())
        if missing:
            raise problem(422, "template_parameters_missing", language, field="parameters", template=data.template,
                          missing=", ".join(missing))
        unknown = sorted(set(data.parameters) - params)
        if unknown:
            raise problem(422, "template_parameters_unknown", language, field="parameters", template=data.template,
                          unknown=", ".join(unknown))


async def do_create_campaign(tx: Tx, principal: Principal, data: CampaignCreate, language: str) -> Campaign:
    principal.require_supervisor()
    await _check(tx, data, language)
    row = Campaign(**data.model_dump(exclude={"texts"}), texts={k: v for k, v in data.texts.items() if v.strip()},
                   status="draft", created_by_user_id=principal.user_id)
    row.name = row.name.strip()
    tx.session.add(row)
    await tx.session.flush()
    return row


_NULLABLE = {"template", "starts_at"}  # null clears these; for the other fields null keeps the value


async def do_update_campaign(tx: Tx, principal: Principal, campaign_id: int, data: CampaignUpdate,
                             language: str) -> Campaign:
    """Change a draft: the changed campaign passes the same checks as a new one; 409 once it has started."""
    row = await _campaign(tx, principal, campaign_id)
    if row.status != "draft":
        raise _wrong_status(row, "changed", language)
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None or k in _NULLABLE}
    if changes.get("template", row.template) is None and "parameters" not in changes:
        changes["parameters"] = {}
    current = {k: getattr(row, k) for k in CampaignCreate.model_fields}
    merged = CampaignCreate.model_validate({**current, **changes})
    await _check(tx, merged, language)
    for key in changes:
        value = getattr(merged, key)
        setattr(row, key, {k: v for k, v in value.items() if v.strip()} if key == "texts" else value)
    row.name, row.updated_at = row.name.strip(), now()
    return row


async def _campaign(tx: Tx, principal: Principal, campaign_id: int) -> Campaign:
    principal.require_supervisor()
    row = await tx.session.get(Campaign, campaign_id, with_for_update=True)
    if row is None:
        raise not_found("campaign", campaign_id)
    return row


_ACTION_RU = {"changed": "изменить", "started": "запустить",
              "paused": "приостановить", "resumed": "возобновить", "cancelled": "отменить"}


def _wrong_status(row: Campaign, action: str, language: str) -> Exception:
    return problem(409, "campaign_status", language, state=row.status, action=action, action_ru=_ACTION_RU[action])


async def do_start_campaign(tx: Tx, principal: Principal, campaign_id: int, language: str) -> Campaign:
    """Fix the audience (each contact of the segments once) as pending recipients and set the campaign running."""
    row = await _campaign(tx, principal, campaign_id)
    if row.status != "draft":
        raise _wrong_status(row, "started", language)
    segments = [s for s in [await tx.session.get(Segment, i) for i in row.segment_ids] if s is not None]
    ids = await audience(tx.session, segments)
    if not ids:
        raise problem(422, "campaign_audience_empty", language)
    texts = [*row.texts.values(), *row.parameters.values(), row.subject]
    for name in sorted(required_attributes(texts)):
        lacking = 0
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            for attrs in (await tx.session.execute(select(Contact.attributes).where(Contact.id.in_(chunk)))).scalars():
                value = (attrs or {}).get(name)
                lacking += value is None or not str(value).strip()
        if lacking:
            raise problem(422, "campaign_placeholder_missing", language, count=lacking, name=name)
    at = now()
    due = max(row.starts_at, at) if row.starts_at is not None else at
    for start in range(0, len(ids), 5000):
        await tx.session.execute(insert(CampaignRecipient), [
            {"campaign_id": row.id, "contact_id": i, "key": f"c{row.id}-{i}", "status": "pending", "reason": "",
             "due_at": due, "created_at": at} for i in ids[start:start + 5000]])
    row.status, row.started_at, row.updated_at = "running", at, at
    tx.publish(CampaignStatusChanged(campaign_id=row.id, status=row.status))
    return row


async def do_pause_campaign(tx: Tx, principal: Principal, campaign_id: int, language: str) -> Campaign:
    row = await _campaign(tx, principal, campaign_id)
    if row.status != "running":
        raise _wrong_status(row, "paused", language)
    row.status, row.updated_at = "paused", now()
    tx.publish(CampaignStatusChanged(campaign_id=row.id, status=row.status))
    return row


async def do_resume_campaign(tx: Tx, principal: Principal, campaign_id: int, language: str) -> Campaign:
    row = await _campaign(tx, principal, campaign_id)
    if row.status != "paused":
        raise _wrong_status(row, "resumed", language)
    row.status, row.updated_at = "running", now()
    tx.publish(CampaignStatusChanged(campaign_id=row.id, status=row.status))
    return row


async def do_cancel_campaign(tx: Tx, principal: Principal, campaign_id: int, language: str) -> Campaign:
    """Stop now: pending recipients are cancelled, and messages written but not yet handed to a sender are
    withdrawn from the outbox (marked failed: "the campaign was cancelled"); a send already under way finishes."""
    row = await _campaign(tx, principal, campaign_id)
    if row.status not in ("draft", "running", "paused"):
        raise _wrong_status(row, "cancelled", language)
    at = now()
    await tx.session.execute(update(CampaignRecipient).where(
        CampaignRecipient.campaign_id == row.id, CampaignRecipient.status == "pending").values(status="cancelled"))
    mine = select(CampaignRecipient.message_id).where(CampaignRecipient.campaign_id == row.id,
                                                      CampaignRecipient.status == "queued")
    unsent = list((await tx.session.execute(
        select(OutboxItem.id, OutboxItem.message_id).where(
            OutboxItem.message_id.in_(mine), OutboxItem.status == "pending",
            (OutboxItem.claimed_until.is_(None)) | (OutboxItem.claimed_until <= at)))).all())
    for start in range(0, len(unsent), 1000):
        chunk = unsent[start:start + 1000]
        await tx.session.execute(update(OutboxItem).where(OutboxItem.id.in_([i for i, _ in chunk]))
                                 .values(status="failed", last_error="the campaign was cancelled", updated_at=at))
        await tx.session.execute(update(Message).where(Message.id.in_([m for _, m in chunk if m is not None]),
                                                       Message.status == "queued")
                                 .values(status="failed", status_reason="The campaign was cancelled.",
                                         status_updated_at=at))
    row.status, row.finished_at, row.updated_at = "cancelled", at, at
    tx.publish(CampaignStatusChanged(campaign_id=row.id, status=row.status))
    return row


# --- Queuing recipients (the worker's action) --------------------------------------------------------------------

async def _draft(tx: Tx, row: Campaign, contact: Contact, templates: dict[str, MessageTemplate]) -> Draft:
    lang = "ru" if (contact.language or "").startswith("ru") else "en"
    subject = fill(row.subject, contact)
    if row.template:
        tpl = templates.get(lang) or next(iter(templates.values()), None)
        if tpl is not None:
            values = {p: fill(row.parameters.get(p, ""), contact) for p in tpl.parameters}
            text = re.sub(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}", lambda m: values.get(m.group(1), ""), tpl.body)
            use = TemplateUse(name=tpl.name, language=tpl.language, approved=tpl.approved,
                              parameters=tuple(values[p] for p in tpl.parameters))
            return Draft(text=text, subject=subject, template=use)
    text = row.texts.get(lang) or next(iter(row.texts.values()), "")
    return Draft(text=fill(text, contact), subject=subject)


async def do_queue_recipients(tx: Tx, *, campaign_id: int, limit: int) -> int:
    """Take up to ``limit`` due pending recipients of a running campaign and write each one's message (or skip
    it with its reason, or move it past its quiet hours). Returns how many rows were settled or moved; the
    campaign is ``done`` once no recipient is pending."""
    row = await tx.session.get(Campaign, campaign_id)
    if row is None or row.status != "running":
        return 0
    at = now()
    recipients = list((await tx.session.execute(
        select(CampaignRecipient).where(CampaignRecipient.campaign_id == row.id,
                                        CampaignRecipient.status == "pending", CampaignRecipient.due_at <= at)
        .order_by(CampaignRecipient.due_at, CampaignRecipient.id).limit(limit))).scalars())
    if not recipients:
        left = await tx.session.scalar(select(CampaignRecipient.id).where(
            CampaignRecipient.campaign_id == row.id, CampaignRecipient.status == "pending").limit(1))
        if left is None:
            row.status, row.finished_at, row.updated_at = "done", at, at
            tx.publish(CampaignStatusChanged(campaign_id=row.id, status="done"))
        return 0
    contacts = {c.id: c for c in (await tx.session.execute(
        select(Contact).where(Contact.id.in_([r.contact_id for r in recipients])))).scalars()}
    templates: dict[str, MessageTemplate] = {}
    if row.template:
        for tpl in (await tx.session.execute(select(MessageTemplate).where(MessageTemplate.name == row.template))
                    ).scalars():
            templates[tpl.language.split("_")[0]] = tpl
    fallback = zone(row.timezone, dt.UTC)
    for r in recipients:
        contact = contacts.get(r.contact_id)
        if contact is None or contact.merged_into_id is not None:
            r.status, r.reason = "skipped", "no_reachable_channel"
            continue
        allowed = next_allowed(at, zone((contact.attributes or {}).get("timezone"), fallback),
                               row.quiet_from, row.quiet_to)
        if allowed > at:
            r.due_at = allowed
            continue
        draft = await _draft(tx, row, contact, templates)
        try:
            channels = await candidates(tx, contact, row.channel, "en")
        except Exception:  # the fixed channel was disabled or removed since the campaign was made
            channels = []
        routes, skipped = await choose_route(tx, contact, channels, draft, row.purpose, "en")
        if not routes:
            r.status, r.reason = "skipped", skip_reason(skipped)
            continue
        route = routes[0]
        await _remember_identity(tx, contact, route)
        conv = await _open_conversation(tx, contact.id)
        if conv is None:
            conv = await lifecycle.start(tx, contact_id=contact.id, status="waiting", at=at,
                                         subject=draft.subject or draft.text, team_id=route.channel.team_id,
                                         queue_id=route.channel.queue_id, channel_id=route.channel.id,
                                         reason=f"campaign «{row.name}» ({row.id}) on {route.channel.type}")
        msg = await queue_message(tx, conv, route, draft, sender_type="system", user_id=None,
                                  payload={"campaign_id": row.id, "campaign": row.name, "campaign_key": r.key},
                                  priority=CAMPAIGN_PRIORITY)
        r.status, r.channel_id, r.message_id, r.conversation_id, r.queued_at = (
            "queued", route.channel.id, msg.id, conv.id, at)
    return len(recipients)


# --- Stats -------------------------------------------------------------------------------------------------------

async def stats_of(session: Any, campaign_ids: list[int]) -> dict[int, CampaignStats]:
    """Targeted, pending, skipped (by reason), cancelled, and of the written messages: queued, sent, delivered,
    read (each counting those that got further), failed; replied: the customer wrote in that conversation after."""
    out: dict[int, dict[str, Any]] = {i: {"skipped_reasons": {}} for i in campaign_ids}
    if not campaign_ids:
        return {}
    rows = (await session.execute(
        select(CampaignRecipient.campaign_id, CampaignRecipient.status, CampaignRecipient.reason, Message.status,
               func.count()).outerjoin(Message, Message.id == CampaignRecipient.message_id)
        .where(CampaignRecipient.campaign_id.in_(campaign_ids))
        .group_by(CampaignRecipient.campaign_id, CampaignRecipient.status, CampaignRecipient.reason,
                  Message.status))).all()
    for cid, status, reason, msg_status, n in rows:
        s = out[cid]
        s["targeted"] = s.get("targeted", 0) + n

        def add(key: str, s: dict[str, Any] = s, n: int = n) -> None:
            s[key] = s.get(key, 0) + n

        if status in ("pending", "cancelled"):
            add(status)
        elif status == "skipped":
            add("skipped")
            s["skipped_reasons"][reason] = s["skipped_reasons"].get(reason, 0) + n
        elif msg_status == "failed":
            add("failed")
        elif msg_status in ("sent", "delivered", "read"):
            add("sent")
            if msg_status in ("delivered", "read"):
                add("delivered")
            if msg_status == "read":
                add("read")
        else:
            add("queued")
    replied = (await session.execute(
        select(CampaignRecipient.campaign_id, func.count())
        .where(CampaignRecipient.campaign_id.in_(campaign_ids), CampaignRecipient.status == "queued",
               exists(select(Message.id).where(and_(
                   Message.conversation_id == CampaignRecipient.conversation_id, Message.direction == "in",
                   Message.created_at >= CampaignRecipient.queued_at))))
        .group_by(CampaignRecipient.campaign_id))).all()
    for cid, n in replied:
        out[cid]["replied"] = n
    return {cid: CampaignStats.model_validate(s) for cid, s in out.items()}
