"""Messages the system itself sends to a customer (routing notices, later the bot): queued in the outbox
through the conversation's latest channel, like an agent's reply, in the same transaction as the decision
that caused them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select

from kommutator.clock import now
from kommutator.contacts.models import Identity
from kommutator.conversations.models import Conversation, Message
from kommutator.db import Tx
from kommutator.events import MessageCreated
from kommutator.ingest.models import Channel
from kommutator.workers.models import OutboxItem

log = logging.getLogger(__name__)


async def do_send_automatic(tx: Tx, conv: Conversation, text: str, *, buttons: Sequence[tuple[str, str]] = (),
                            sender: str = "system", purpose: str = "") -> Message | None:
    """Queue ``text`` (with optional ``(id, label)`` buttons) to the customer; None when the conversation has
    no channel to answer on (then a note in the timeline says what could not be sent)."""
    ts = now()
    channel = await tx.session.get(Channel, conv.last_inbound_channel_id) if conv.last_inbound_channel_id else None
    external_id = None
    if channel is not None and channel.enabled:
        external_id = await tx.session.scalar(
            select(Identity.external_id).where(Identity.contact_id == conv.contact_id,
                                               Identity.channel_type == channel.type)
            .order_by(Identity.id.desc()).limit(1))
    payload: dict[str, object] = {"automatic": purpose} if purpose else {}
    if buttons:
        payload["buttons"] = [{"id": b, "label": label} for b, label in buttons]
    if channel is None or external_id is None:
        log.info("conversation %s: no channel to send the %s notice on", conv.id, purpose or "automatic")
        note = Message(conversation_id=conv.id, direction="internal", sender_type="system", kind="note",
                       text=f"Could not tell the customer (no channel to answer on): {text}", created_at=ts,
                       payload=payload)
        tx.session.add(note)
        return None
    msg = Message(conversation_id=conv.id, direction="out", sender_type=sender, kind="text", channel_id=channel.id,
                  text=text, status="queued", created_at=ts, status_updated_at=ts, payload=payload)
    tx.session.add(msg)
    await tx.session.flush()
    tx.session.add(OutboxItem(kind="message", message_id=msg.id, channel_id=channel.id,
                              ordering_key=f"{channel.id}:{external_id}", payload={"to": external_id},
                              next_attempt_at=ts))
    conv.last_message_at = ts
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction="out", sender_type=sender, message_kind="text",
                              channel_id=channel.id))
    return msg
