"""What a visitor sees (their own conversation's customer-visible messages on this channel) and how what they
write enters the system: through the same durable ingest path as every provider's webhook."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import and_, or_, select, update

from kommutator.agents.models import User
from kommutator.channels.base import InboundFile, InboundItem, InboundMessage, InboundSender, InboundStatus
from kommutator.channels.types.webchat.adapter import OUT_PREFIX
from kommutator.channels.types.webchat.models import WebchatVisitor
from kommutator.channels.types.webchat.visitors import Webchat, check_rate, display_name
from kommutator.clock import now
from kommutator.contacts.models import Contact
from kommutator.conversations.models import OPEN_STATUSES, Attachment, Conversation, Message
from kommutator.db import Tx
from kommutator.ingest.actions import accept
from kommutator.runtime import Runtime

PAGE = 200
# Outbound messages become visible when the outbox has handed them over (sent), which may be after later
# messages got their ids; catch-ups also look this far back in time so such a message is never skipped.
LOOKBACK = dt.timedelta(minutes=2)
_VISIBLE_OUT = ("sent", "delivered", "read")


def provider_id(visitor: WebchatVisitor, client_id: str) -> str:
    """The message's provider id (and raw event id): the visitor's id and the widget's own id for it, so a
    resend after a reconnect is recognised and dropped."""
    return f"{visitor.external_id}:{client_id}"


def _visible(chat: Webchat, contact_id: int) -> Any:
    return (select(Message, User.name)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(User, User.id == Message.sender_user_id)
            .where(Conversation.contact_id == contact_id, Message.channel_id == chat.id, Message.kind == "text",
                   or_(Message.direction == "in",
                       and_(Message.direction == "out", Message.status.in_(_VISIBLE_OUT)))))


async def visible_messages(rt: Runtime, chat: Webchat, contact_id: int, *, after_id: int = 0,
                           recent: bool = False, limit: int = PAGE) -> list[dict[str, Any]]:
    """The visitor's messages after ``after_id``, oldest first; ``recent`` adds replies that became visible in
    the last minutes even with a lower id (handed over by the outbox after later messages got their ids; the
    caller drops the ones it has)."""
    query = _visible(chat, contact_id)
    if recent:
        since = now() - LOOKBACK
        query = query.where(or_(Message.id > after_id,
                                and_(Message.direction == "out", Message.status_updated_at >= since)))
    else:
        query = query.where(Message.id > after_id)
    async with rt.db.read() as s:
        rows = (await s.execute(query.order_by(Message.id).limit(limit))).all()
        ids = [m.id for m, _ in rows]
        files: dict[int, list[dict[str, Any]]] = {}
        if ids:
            for a in (await s.execute(select(Attachment).where(Attachment.message_id.in_(ids))
                                      .order_by(Attachment.id))).scalars():
                files.setdefault(a.message_id, []).append(
                    {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size})
    return [_read(m, name, files.get(m.id, [])) for m, name in rows]


def _read(m: Message, agent_name: str | None, files: list[dict[str, Any]]) -> dict[str, Any]:
    payload = m.payload or {}
    out: dict[str, Any] = {
        "id": m.id, "direction": m.direction, "sender": m.sender_type, "text": m.text,
        "created_at": m.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "name": (agent_name or "") if m.sender_type == "agent" else "", "attachments": files}
    if m.direction == "in":
        out["client_id"] = (m.provider_message_id or "").partition(":")[2]
        out["status"] = "received"
    else:
        out["buttons"] = [{"id": str(b["id"]), "label": str(b["label"])} for b in payload.get("buttons") or []
                          if isinstance(b, dict) and "id" in b and "label" in b]
    return out


async def current_agent(rt: Runtime, contact_id: int | None) -> tuple[int | None, str]:
    """The visitor's open conversation and the name of the agent it is assigned to ("" when none)."""
    if contact_id is None:
        return None, ""
    async with rt.db.read() as s:
        row = (await s.execute(
            select(Conversation.id, User.name).outerjoin(User, User.id == Conversation.assignee_id)
            .where(Conversation.contact_id == contact_id, Conversation.status.in_(OPEN_STATUSES))
            .order_by(Conversation.id.desc()).limit(1))).first()
    if row is None:
        return None, ""
    return int(row[0]), row[1] or ""


async def receive(rt: Runtime, chat: Webchat, visitor: WebchatVisitor, *, client_id: str, text: str,
                  button: str | None = None, files: tuple[InboundFile, ...] = (),
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Commit the visitor's message (raw event unique per channel and client id), then answer; a resend of a
    committed message answers the same message id with ``duplicate``."""
    await check_rate(rt, "message", visitor.external_id)
    pid = provider_id(visitor, client_id)
    sender = InboundSender(external_id=visitor.external_id, name=visitor.name, email=visitor.email,
                           phone=visitor.phone, language=visitor.language, display=display_name(visitor))
    raw = {"client_id": client_id, "text": text, "button": button, **(extra or {}),
           "files": [{"filename": f.filename, "content_type": f.content_type, "size": len(f.data or b"")}
                     for f in files]}
    item = InboundMessage(event_id=pid, provider_message_id=pid, sender=sender, text=text, button=button,
                          files=files, payload=dict(extra or {}))
    [result] = await accept(rt, chat.config, [item], json.dumps(raw, ensure_ascii=False).encode())
    message_id = result.received.message_id if result.received else None
    if message_id is None:
        async with rt.db.read() as s:
            message_id = await s.scalar(select(Message.id).where(Message.channel_id == chat.id,
                                                                 Message.provider_message_id == pid))
    return {"client_id": client_id, "message_id": message_id, "duplicate": result.duplicate or
            (result.received is not None and result.received.message_id is None)}


async def fill_contact_email(rt: Runtime, contact_id: int, email: str) -> None:
    """The offline form's address goes onto the contact when it has none."""
    async def job(tx: Tx) -> None:
        await tx.conn.execute(update(Contact).where(Contact.id == contact_id, Contact.email.is_(None))
                              .values(email=email.lower(), updated_at=now()))

    await rt.db.write(job)


async def mark_delivered(rt: Runtime, chat: Webchat, contact_id: int, message_ids: list[int]) -> None:
    """The widget showed these outbound messages: record 'delivered' like a provider's status report."""
    async with rt.db.read() as s:
        mine = list((await s.execute(
            select(Message.id).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id.in_(message_ids), Message.channel_id == chat.id, Message.direction == "out",
                   Message.status == "sent", Conversation.contact_id == contact_id))).scalars())
    if not mine:
        return
    items: list[InboundItem] = [
        InboundStatus(event_id=f"delivered:{i}", provider_message_id=f"{OUT_PREFIX}{i}", status="delivered")
        for i in mine]
    await accept(rt, chat.config, items, json.dumps({"delivered": mine}).encode())
