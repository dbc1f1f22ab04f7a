"""The body of a delivery: the event's own facts plus the current state of what it is about, read when sent.

Reading at send time keeps the journal cheap on the inbound path and means an erased contact's data is never
sent later from a copy: a subject that no longer exists is sent as its ids with ``"deleted": true``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.bot.models import BotSession
from kommutator.contacts.models import Contact, Identity
from kommutator.conversations.models import Attachment, Conversation, ConversationLabel, Message
from kommutator.outbound.models import Campaign, CampaignRecipient, OutboundNotification
from kommutator.quality.models import QualityAlert


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


async def contact_view(s: AsyncSession, contact_id: int) -> dict[str, Any]:
    c = await s.get(Contact, contact_id)
    if c is None:
        return {"id": contact_id, "deleted": True}
    identities = (await s.execute(select(Identity.channel_type, Identity.external_id, Identity.display)
                                  .where(Identity.contact_id == contact_id).order_by(Identity.id))).all()
    return {"id": c.id, "name": c.name, "email": c.email, "phone": c.phone, "language": c.language,
            "manager_id": c.manager_id, "attributes": c.attributes or {}, "merged_into_id": c.merged_into_id,
            "identities": [{"channel_type": t, "external_id": e, "display": d} for t, e, d in identities],
            "created_at": _iso(c.created_at), "updated_at": _iso(c.updated_at)}


async def conversation_view(s: AsyncSession, conversation_id: int) -> dict[str, Any]:
    c = await s.get(Conversation, conversation_id)
    if c is None:
        return {"id": conversation_id, "deleted": True}
    labels = (await s.execute(select(ConversationLabel.label)
                              .where(ConversationLabel.conversation_id == conversation_id))).scalars().all()
    return {"id": c.id, "status": c.status, "contact_id": c.contact_id, "assignee_id": c.assignee_id,
            "team_id": c.team_id, "queue_id": c.queue_id, "channel_id": c.last_inbound_channel_id,
            "priority": c.priority, "subject": c.subject, "labels": sorted(labels),
            "created_at": _iso(c.created_at), "first_response_at": _iso(c.first_response_at),
            "resolved_at": _iso(c.resolved_at), "reopened_at": _iso(c.reopened_at)}


async def message_view(s: AsyncSession, message_id: int) -> dict[str, Any]:
    m = await s.get(Message, message_id)
    if m is None:
        return {"id": message_id, "deleted": True}
    files = (await s.execute(select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size)
                             .where(Attachment.message_id == message_id).order_by(Attachment.id))).all()
    return {"id": m.id, "conversation_id": m.conversation_id, "direction": m.direction,
            "sender_type": m.sender_type, "sender_user_id": m.sender_user_id, "channel_id": m.channel_id,
            "text": m.text, "status": m.status, "created_at": _iso(m.created_at),
            "attachments": [{"id": i, "filename": f, "content_type": t, "size": n} for i, f, t, n in files]}


async def bot_view(s: AsyncSession, conversation_id: int) -> dict[str, Any]:
    b = await s.get(BotSession, conversation_id)  # one bot session per conversation
    if b is None:
        return {}
    return {"flow_id": b.flow_id, "flow_version": b.flow_version, "outcome": b.outcome,
            "summary": b.summary, "trail": list((b.state or {}).get("trail", [])),
            "started_at": _iso(b.created_at), "finished_at": _iso(b.finished_at)}


async def campaign_view(s: AsyncSession, campaign_id: int) -> dict[str, Any]:
    c = await s.get(Campaign, campaign_id)
    if c is None:
        return {"id": campaign_id, "deleted": True}
    counts = dict((await s.execute(select(CampaignRecipient.status, func.count())
                                   .where(CampaignRecipient.campaign_id == campaign_id)
                                   .group_by(CampaignRecipient.status))).all())
    return {"id": c.id, "name": c.name, "status": c.status, "purpose": c.purpose, "channel": c.channel,
            "started_at": _iso(c.started_at), "finished_at": _iso(c.finished_at), "recipients": counts}


async def notification_view(s: AsyncSession, notification_id: int) -> dict[str, Any]:
    n = await s.get(OutboundNotification, notification_id)
    if n is None:
        return {"id": notification_id, "deleted": True}
    return {"id": n.id, "contact_id": n.contact_id, "status": n.status, "purpose": n.purpose, "plan": n.plan,
            "skipped": n.skipped}


async def body(s: AsyncSession, event_type: str, event: dict[str, Any], occurred_at: dt.datetime) -> dict[str, Any]:
    """``{"type", "timestamp", "data"}``: Standard Webhooks' recommended shape."""
    data = dict(event)
    conv_id = event.get("conversation_id")
    if event_type == "campaign.status_changed":
        data["campaign"] = await campaign_view(s, int(event["campaign_id"]))
        return {"type": event_type, "timestamp": _iso(occurred_at), "data": data}
    if event_type == "notification.status_changed":
        data["notification"] = await notification_view(s, int(event["notification_id"]))
    if event_type.startswith("contact.") or event_type == "notification.status_changed":
        data["contact"] = await contact_view(s, int(event["contact_id"]))
    elif conv_id:
        conversation = await conversation_view(s, int(conv_id))
        data["conversation"] = conversation
        if "contact_id" in conversation:
            data["contact"] = await contact_view(s, int(conversation["contact_id"]))
    if event_type.startswith("message.") and event.get("message_id"):
        data["message"] = await message_view(s, int(event["message_id"]))
    if event_type == "bot.session_finished" and conv_id:
        data["bot"] = await bot_view(s, int(conv_id))
    if event.get("alert_id") and event_type in ("sla.breached", "alert.raised"):
        alert = await s.get(QualityAlert, int(event["alert_id"]))
        if alert is not None:
            data["alert"] = {"id": alert.id, "kind": alert.kind, "severity": alert.severity, "title": alert.title,
                             "body": alert.body, "agent_id": alert.agent_id, "created_at": _iso(alert.created_at)}
    return {"type": event_type, "timestamp": _iso(occurred_at), "data": data}
