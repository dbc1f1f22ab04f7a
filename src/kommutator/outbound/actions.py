"""The company writes first: an agent starts a conversation, an integrator sends a notification (docs/outbound.md).

Which channel may carry a first message is each adapter's rule (``ChannelAdapter.first_message``); this module
only chooses candidates (the preferred channel first), checks consent, and queues the message exactly as an
agent's reply is queued: a message row and an outbox row in one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from kommutator.auth.principal import Principal
from kommutator.channels.base import Draft, Reach, Refusal, TemplateUse
from kommutator.channels.registry import get_adapter
from kommutator.clock import now
from kommutator.contacts import policy, preferred
from kommutator.contacts.models import Consent, Contact, Identity
from kommutator.conversations import lifecycle
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.errors import ProblemError
from kommutator.events import MessageCreated, NotificationStatusChanged
from kommutator.ingest.models import Channel
from kommutator.ingest.types import ChannelConfig
from kommutator.outbound.models import MessageTemplate, NotificationAttempt, OutboundNotification
from kommutator.outbound.schemas import ConversationStart, NotificationCreate
from kommutator.outbound.texts import PLACEHOLDER, problem, refused
from kommutator.workers.models import OutboxItem

# --- Choosing a channel ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """A channel that accepted the first message, and the recipient's id there."""

    channel: Channel
    to: str
    measure: dict[str, Any]
    customer_wrote_at: dt.datetime | None = None  # their latest message on the channel, in any conversation


async def draft_of(tx: Tx, contact: Contact, data: ConversationStart | NotificationCreate,
                   language: str) -> tuple[Draft, MessageTemplate | None]:
    """The message to send: the text, or the template (in the asked or the contact's language) filled in."""
    if not data.template:
        return Draft(text=(data.text or "").strip(), subject=data.subject), None
    wanted = data.language or contact.language or "en"
    rows = list((await tx.session.execute(select(MessageTemplate).where(MessageTemplate.name == data.template)))
                .scalars())
    row = next((r for r in rows if r.language == wanted), None) or next(
        (r for r in rows if r.language.split("_")[0] == wanted.split("_")[0]), None)
    if row is None:
        raise problem(422, "template_not_found", language, field="template", template=data.template,
                      template_language=wanted)
    missing = [p for p in row.parameters if not data.parameters.get(p, "").strip()]
    if missing:
        raise problem(422, "template_parameters_missing", language, field="parameters", template=row.name,
                      missing=", ".join(missing))
    unknown = sorted(set(data.parameters) - set(row.parameters))
    if unknown:
        raise problem(422, "template_parameters_unknown", language, field="parameters", template=row.name,
                      unknown=", ".join(unknown))
    text = PLACEHOLDER.sub(lambda m: data.parameters[m.group(1)], row.body)
    values = tuple(data.parameters[p] for p in row.parameters)
    use = TemplateUse(name=row.name, language=row.language, parameters=values, approved=row.approved)
    return Draft(text=text, subject=data.subject or "", template=use), row


async def _reach(tx: Tx, contact: Contact, channel: Channel) -> Reach:
    chat_id = await tx.session.scalar(
        select(Identity.external_id).where(Identity.contact_id == contact.id, Identity.channel_type == channel.type)
        .order_by(Identity.id.desc()).limit(1))
    last_in = await tx.session.scalar(
        select(func.max(Message.created_at)).join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.contact_id == contact.id, Message.channel_id == channel.id, Message.direction == "in"))
    return Reach(chat_id=chat_id, phone=contact.phone, email=contact.email, last_inbound_at=last_in)


def _config(channel: Channel) -> ChannelConfig:
    # The rules read settings only: no credentials are decrypted for them.
    return ChannelConfig(id=channel.id, type=channel.type, name=channel.name, settings=dict(channel.settings),
                         credentials={}, enabled=channel.enabled, team_id=channel.team_id, queue_id=channel.queue_id)


async def consent_refusal(tx: Tx, contact_id: int, channel_type: str, purpose: str) -> str | None:
    """Why consent forbids the message on this channel type (a SENTENCES code), or None."""
    row = await tx.session.get(Consent, (contact_id, channel_type))
    if row is not None and not row.granted:
        return "no_consent"
    if purpose == "marketing" and (row is None or not row.marketing):
        return "no_marketing_consent"
    return None


async def check_route(tx: Tx, contact: Contact, channel: Channel, draft: Draft, purpose: str,
                      language: str) -> Route:
    """The route through ``channel`` if consent and the channel's rule allow it; else the 422 saying why."""
    reason = await consent_refusal(tx, contact.id, channel.type, purpose)
    if reason is not None:
        raise problem(422, reason, language, channel=channel.name)
    adapter = get_adapter(channel.type)
    reach = await _reach(tx, contact, channel)
    try:
        to = adapter.first_message(_config(channel), reach, draft, now())
    except Refusal as exc:
        raise refused(exc, language) from None
    return Route(channel, to, adapter.measure(draft), reach.last_inbound_at)


async def _enabled_channels(tx: Tx) -> list[Channel]:
    return list((await tx.session.execute(select(Channel).where(Channel.enabled.is_(True)).order_by(Channel.id)))
                .scalars())


async def candidates(tx: Tx, contact: Contact, choice: str | list[str], language: str) -> list[Channel]:
    """The channels to try, in order: for 'preferred', the contact's channel types most preferred first (the one
    they last wrote through, else the first of the type), then every other enabled channel; else as listed."""
    channels = await _enabled_channels(tx)
    if choice == "preferred":
        ranking = (await preferred.ranked(tx.session, [contact.id])).get(contact.id, [])
        last: dict[str, int | None] = {str(t): c for t, c in (await tx.session.execute(
            select(Channel.type, func.max(Message.channel_id)).join(Message, Message.channel_id == Channel.id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.contact_id == contact.id, Message.direction == "in")
            .group_by(Channel.type))).all()}
        ordered: list[Channel] = []
        for channel_type in ranking:
            of_type = [c for c in channels if c.type == channel_type]
            of_type.sort(key=lambda c: (c.id != last.get(channel_type), c.id))
            ordered += of_type
        return ordered + [c for c in channels if c not in ordered]
    picked: list[Channel] = []
    for item in choice if isinstance(choice, list) else [choice]:
        found = [c for c in channels if str(c.id) == item] or [c for c in channels if c.type == item][:1]
        if not found:
            raise problem(422, "channel_not_found", language, channel=item)
        picked += [c for c in found if c not in picked]
    return picked


async def choose_route(tx: Tx, contact: Contact, channels: list[Channel], draft: Draft, purpose: str,
                       language: str) -> tuple[list[Route], list[dict[str, Any]]]:
    """Every channel of ``channels`` that may carry the message (in order), and why the others may not."""
    routes: list[Route] = []
    skipped: list[dict[str, Any]] = []
    for channel in channels:
        try:
            routes.append(await check_route(tx, contact, channel, draft, purpose, language))
        except ProblemError as exc:
            skipped.append({"channel_id": channel.id, "channel_type": channel.type, "code": exc.code,
                            "detail": exc.detail, "sentences": exc.extra.get("sentences", {})})
    return routes, skipped


def no_route(skipped: list[dict[str, Any]], language: str) -> ProblemError:
    if len(skipped) == 1:  # one channel asked for: its own sentence
        only = skipped[0]
        return ProblemError(422, str(only["code"]), str(only["detail"]), sentences=only.get("sentences", {}),
                            skipped=skipped)
    reasons = "; ".join(f"{s['channel_type']}: {s['detail']}" for s in skipped) or "-"
    err = problem(422, "no_reachable_channel", language, reasons=reasons)
    err.extra["skipped"] = skipped
    return err


# --- Queuing the message -----------------------------------------------------------------------------------------

async def _remember_identity(tx: Tx, contact: Contact, route: Route) -> None:
    """The recipient's id becomes an identity of the contact, so that their answer joins this conversation."""
    owner = await tx.session.scalar(select(Identity.contact_id).where(
        Identity.channel_type == route.channel.type, Identity.external_id == route.to))
    if owner is None:
        tx.session.add(Identity(contact_id=contact.id, channel_type=route.channel.type, external_id=route.to,
                                display=route.to))


async def queue_message(tx: Tx, conv: Conversation, route: Route, draft: Draft, *, sender_type: str,
                        user_id: int | None, payload: dict[str, Any] | None = None, priority: int = 0) -> Message:
    """The message and its outbox row, as an agent's reply is queued (conversations/actions.do_send_message);
    ``priority`` 1 (campaigns) is claimed after every due 0 (replies, notifications)."""
    ts = now()
    body = dict(payload or {})
    if route.customer_wrote_at is not None:
        # Reply windows (WhatsApp's 24 hours) run from the customer's latest message on the channel, which may be
        # in an earlier conversation than this new one: the outbox reads it from here (workers/outbox.py).
        body["customer_wrote_at"] = route.customer_wrote_at.isoformat()
    if draft.template is not None:
        body["template"] = {"name": draft.template.name, "language": draft.template.language,
                            "values": list(draft.template.parameters)}
    msg = Message(conversation_id=conv.id, direction="out", sender_type=sender_type, sender_user_id=user_id,
                  kind="text", channel_id=route.channel.id, text=draft.text, payload=body, status="queued",
                  created_at=ts, status_updated_at=ts)
    tx.session.add(msg)
    await tx.session.flush()
    tx.session.add(OutboxItem(kind="message", message_id=msg.id, channel_id=route.channel.id,
                              ordering_key=f"{route.channel.id}:{route.to}", payload={"to": route.to},
                              next_attempt_at=ts, priority=priority))
    conv.last_message_at = conv.updated_at = ts
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction="out", sender_type=sender_type, message_kind="text",
                              channel_id=route.channel.id))
    return msg


async def _open_conversation(tx: Tx, contact_id: int) -> Conversation | None:
    return (await tx.session.execute(
        select(Conversation).where(Conversation.contact_id == contact_id, Conversation.status != "resolved")
        .order_by(Conversation.id.desc()).limit(1))).scalar_one_or_none()


# --- An agent starts a conversation --------------------------------------------------------------------------

async def do_start_conversation(tx: Tx, principal: Principal, data: ConversationStart,
                                language: str) -> tuple[Conversation, Message, Route]:
    """An agent's first message to a contact they may see: a new conversation, theirs, waiting for the answer."""
    contact = await policy.check_see(tx.session, principal, data.contact_id)
    open_conv = await _open_conversation(tx, contact.id)
    if open_conv is not None:
        err = problem(409, "conversation_open", language, conversation_id=open_conv.id)
        err.extra["conversation_id"] = open_conv.id
        raise err
    draft, _ = await draft_of(tx, contact, data, language)
    channels = await candidates(tx, contact, data.channel, language)
    if data.channel != "preferred":
        route = await check_route(tx, contact, channels[0], draft, "service", language)
    else:
        routes, skipped = await choose_route(tx, contact, channels, draft, "service", language)
        if not routes:
            raise no_route(skipped, language)
        route = routes[0]
    await _remember_identity(tx, contact, route)
    conv = await lifecycle.start(tx, contact_id=contact.id, status="waiting", at=now(),
                                 subject=draft.subject or draft.text,
                                 assignee_id=principal.user_id, team_id=route.channel.team_id,
                                 queue_id=route.channel.queue_id, channel_id=route.channel.id,
                                 actor_user_id=principal.user_id,
                                 reason=f"started by {principal.name} on {route.channel.type}")
    msg = await queue_message(tx, conv, route, draft, sender_type="agent", user_id=principal.user_id)
    return conv, msg, route


# --- Notifications -----------------------------------------------------------------------------------------------

async def _contact_of(tx: Tx, principal: Principal, data: NotificationCreate, language: str) -> Contact:
    if data.contact_id is not None:
        return await policy.check_see(tx.session, principal, data.contact_id)
    ref = data.contact
    assert ref is not None
    live = Contact.merged_into_id.is_(None)
    stmt: Any
    if ref.phone:
        what = "phone"
        digits = re.sub(r"[^0-9]", "", ref.phone)
        phones = {f"+{digits}", digits}
        stmt = select(Contact.id).where(live, Contact.phone.in_(phones)).union(
            select(Identity.contact_id).join(Contact, Contact.id == Identity.contact_id)
            .where(live, Identity.verified_phone.in_(phones)))
    elif ref.email:
        what = "email"
        address = str(ref.email).lower()
        stmt = select(Contact.id).where(live, func.lower(Contact.email) == address).union(
            select(Identity.contact_id).join(Contact, Contact.id == Identity.contact_id)
            .where(live, Identity.verified_email == address))
    else:
        what = "identity"
        stmt = select(Identity.contact_id).join(Contact, Contact.id == Identity.contact_id).where(
            live, Identity.channel_type == ref.channel_type, Identity.external_id == ref.external_id)
    ids = sorted({int(i) for i in (await tx.session.execute(stmt)).scalars()})
    if not ids:
        raise problem(404, "contact_not_found", language, what=what)
    if len(ids) > 1:
        raise problem(409, "contact_ambiguous", language, what=what)
    return await policy.check_see(tx.session, principal, ids[0])


async def do_send_notification(tx: Tx, principal: Principal, data: NotificationCreate,
                               language: str) -> OutboundNotification:
    """Accept a notification: plan the channels to try (consent and each channel's rule), send on the first."""
    contact = await _contact_of(tx, principal, data, language)
    draft, template = await draft_of(tx, contact, data, language)
    channels = await candidates(tx, contact, data.channels, language)
    routes, skipped = await choose_route(tx, contact, channels, draft, data.purpose, language)
    if not routes:
        raise no_route(skipped, language)
    note = OutboundNotification(contact_id=contact.id, purpose=data.purpose, text=draft.text, subject=draft.subject,
                                template_id=template.id if template else None, parameters=dict(data.parameters),
                                plan=[r.channel.id for r in routes], skipped=skipped, status="sending",
                                created_by_user_id=principal.user_id)
    tx.session.add(note)
    await tx.session.flush()
    await _attempt(tx, note, contact, routes[0], draft, position=0)
    return note


async def _attempt(tx: Tx, note: OutboundNotification, contact: Contact, route: Route, draft: Draft, *,
                   position: int) -> NotificationAttempt:
    """Send the notification through ``route``: into the contact's open conversation, or a new one that waits for
    their answer (which then routes as any customer message does)."""
    await _remember_identity(tx, contact, route)
    conv = await _open_conversation(tx, contact.id)
    if conv is None:
        conv = await lifecycle.start(tx, contact_id=contact.id, status="waiting", at=now(),
                                     subject=draft.subject or draft.text, team_id=route.channel.team_id,
                                     queue_id=route.channel.queue_id, channel_id=route.channel.id,
                                     reason=f"notification {note.id} on {route.channel.type}")
    msg = await queue_message(tx, conv, route, draft, sender_type="system", user_id=None,
                              payload={"notification_id": note.id})
    attempt = NotificationAttempt(outreach_id=note.id, position=position, channel_id=route.channel.id,
                                  channel_type=route.channel.type, message_id=msg.id, conversation_id=conv.id,
                                  status="queued")
    tx.session.add(attempt)
    await tx.session.flush()
    return attempt


async def do_follow_attempts(tx: Tx, *, limit: int = 200) -> int:
    """Settle each attempt still queued whose message has an outcome: sent (later statuses are read live from
    the message) or failed — then the next planned channel is tried (its rule and consent checked again now), and
    when none is left the notification failed. Returns the attempts settled."""
    rows = (await tx.session.execute(
        select(NotificationAttempt, Message.status, Message.status_reason)
        .join(Message, Message.id == NotificationAttempt.message_id)
        .where(NotificationAttempt.status == "queued", Message.status != "queued")
        .order_by(NotificationAttempt.id).limit(limit))).all()
    for attempt, status, reason in rows:
        failed = status == "failed"
        attempt.status, attempt.reason, attempt.updated_at = ("failed" if failed else "sent"), reason or "", now()
        note = await tx.session.get(OutboundNotification, attempt.outreach_id)
        if note is None:
            continue
        if failed:
            await _next_attempt(tx, note, attempt.position + 1)
        else:
            note.status = "sent"
        if note.status in ("sent", "failed"):
            tx.publish(NotificationStatusChanged(notification_id=note.id, contact_id=note.contact_id,
                                                 status=note.status))
    return len(rows)


async def _next_attempt(tx: Tx, note: OutboundNotification, position: int) -> None:
    contact = await tx.session.get(Contact, note.contact_id)
    if contact is None:
        note.status = "failed"
        return
    template = await tx.session.get(MessageTemplate, note.template_id) if note.template_id else None
    draft = Draft(text=note.text, subject=note.subject, template=None if template is None else TemplateUse(
        name=template.name, language=template.language, approved=template.approved,
        parameters=tuple(str(note.parameters.get(p, "")) for p in template.parameters)))
    skipped = list(note.skipped)
    for index in range(position, len(note.plan)):
        channel_id = note.plan[index]
        channel = await tx.session.get(Channel, channel_id)
        if channel is None or not channel.enabled:
            skipped.append({"channel_id": channel_id, "channel_type": channel.type if channel else "",
                            "code": "channel_not_found", "detail": "the channel is gone or disabled"})
            continue
        try:
            route = await check_route(tx, contact, channel, draft, note.purpose, "en")
        except ProblemError as exc:
            skipped.append({"channel_id": channel.id, "channel_type": channel.type, "code": exc.code,
                            "detail": exc.detail})
            continue
        note.skipped = skipped
        await _attempt(tx, note, contact, route, draft, position=index)
        note.status = "sending"
        return
    note.skipped = skipped
    note.status = "failed"
