"""What agents do to a conversation: replies, notes, assignment, status, labels (inbound: inbound.py).

Only these functions write conversations; each records its events on the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import delete, select, update

from kommutator.agents.models import Team, User
from kommutator.auth.principal import Principal
from kommutator.clock import now
from kommutator.contacts.models import Identity
from kommutator.conversations import lifecycle
from kommutator.conversations.files import StoredFile
from kommutator.conversations.models import Attachment, Conversation, ConversationLabel, Message
from kommutator.conversations.queries import may_see
from kommutator.conversations.schemas import AssignRequest, ConversationUpdate, MessageCreate, StatusRequest
from kommutator.conversations.timers import UNSNOOZE
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.events import MessageCreated
from kommutator.ingest.models import Channel
from kommutator.queues.models import Queue
from kommutator.workers.models import OutboxItem
from kommutator.workers.timers import do_cancel, do_schedule

ACCEPT_TIMER = "routing.accept"  # routing/service.py schedules it; opening or replying accepts


async def get_visible_conversation(tx: Tx, principal: Principal, conversation_id: int) -> Conversation:
    """Load a conversation the principal may act on, else 404 (never reveal that it exists)."""
    conv = await tx.session.get(Conversation, conversation_id)
    if conv is None or not await may_see(tx.session, principal, conv):
        raise not_found("conversation", conversation_id)
    return conv


async def _reply_channel(tx: Tx, conv: Conversation, channel_id: int | None) -> tuple[Channel, str]:
    """The channel a reply goes through and the customer's id there."""
    chosen = channel_id or conv.last_inbound_channel_id
    if chosen is None:
        raise ProblemError(422, "no_channel", "This conversation has no channel yet; pass channel_id.")
    channel = await tx.session.get(Channel, chosen)
    if channel is None:
        raise ProblemError(422, "channel_not_found", f"There is no channel with id {chosen}.")
    if not channel.enabled:
        raise ProblemError(409, "channel_disabled", f"Channel {channel.name!r} is disabled; choose another.")
    external_id = await tx.session.scalar(
        select(Identity.external_id).where(Identity.contact_id == conv.contact_id,
                                           Identity.channel_type == channel.type)
        .order_by(Identity.id.desc()).limit(1))
    if external_id is None:
        raise ProblemError(422, "no_identity_on_channel",
                           f"The customer has no {channel.type} identity; choose a channel they use.")
    return channel, external_id


async def do_send_message(tx: Tx, principal: Principal, conversation_id: int, data: MessageCreate,
                          *, files: Sequence[StoredFile] = ()) -> Message:
    """An agent's reply (queued in the outbox for its channel) or a private note, with optional files."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    ts = now()
    if not data.text and not files:
        raise ProblemError(422, "empty_message", "Write a text or attach a file.")
    if data.kind == "note":
        if data.channel_id is not None:
            raise ProblemError(422, "note_has_no_channel", "Private notes are never sent; drop channel_id.")
        msg = Message(conversation_id=conv.id, direction="internal", sender_type="agent",
                      sender_user_id=principal.user_id, kind="note", text=data.text, status="received",
                      created_at=ts)
        tx.session.add(msg)
    else:
        channel, external_id = await _reply_channel(tx, conv, data.channel_id)
        msg = Message(conversation_id=conv.id, direction="out", sender_type="agent",
                      sender_user_id=principal.user_id, kind="text", channel_id=channel.id, text=data.text,
                      status="queued", created_at=ts, status_updated_at=ts)
        tx.session.add(msg)
        await tx.session.flush()
        tx.session.add(OutboxItem(kind="message", message_id=msg.id, channel_id=channel.id,
                                  ordering_key=f"{channel.id}:{external_id}", payload={"to": external_id},
                                  next_attempt_at=ts))
        if conv.first_response_at is None:
            conv.first_response_at = ts
        await tx.session.execute(update(User).where(User.id == principal.user_id).values(last_active_at=ts))
        if conv.assignee_id == principal.user_id and conv.accepted_at is None:
            conv.accepted_at = ts
            await do_cancel(tx, kind=ACCEPT_TIMER, subject_type="conversation", subject_id=conv.id)
        if conv.status in ("bot", "queued"):
            # The agent who answers takes it; no event of its own (the message's event tells listeners).
            claim = {"assignee_id": principal.user_id, "assigned_at": ts} if conv.assignee_id is None else {}
            lifecycle.apply(tx, conv, lifecycle.move(lifecycle.Now.of(conv), "assigned", at=ts,
                                                     reason="the agent replied", code="agent_replied",
                                                     actor_user_id=principal.user_id,
                                                     values=claim, publish=False))
    conv.last_message_at = ts
    conv.updated_at = ts
    await tx.session.flush()
    tx.session.add_all([Attachment(message_id=msg.id, filename=f.filename, content_type=f.content_type, size=f.size,
                                   sha256=f.sha256, storage_key=f.key, created_at=ts) for f in files])
    tx.publish(MessageCreated(conversation_id=conv.id, team_id=conv.team_id, assignee_id=conv.assignee_id,
                              message_id=msg.id, direction=msg.direction, sender_type="agent",
                              message_kind=msg.kind, channel_id=msg.channel_id))
    return msg


async def do_accept(tx: Tx, principal: Principal, conversation_id: int) -> dt.datetime | None:
    """The assignee opened the conversation: it is accepted (the router's accept timer stops counting)."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    if conv.assignee_id == principal.user_id and conv.accepted_at is None:
        conv.accepted_at = now()
        await do_cancel(tx, kind=ACCEPT_TIMER, subject_type="conversation", subject_id=conv.id)
    return conv.accepted_at


async def do_assign(tx: Tx, principal: Principal, conversation_id: int, data: AssignRequest) -> Conversation:
    """Assign, transfer to a colleague or a team (with a note), or unassign."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    ts = now()
    before = (conv.assignee_id, conv.team_id)
    if data.assignee_id is not None:
        user = await tx.session.get(User, data.assignee_id)
        if user is None or not user.active:
            raise ProblemError(422, "assignee_not_found", f"assignee_id {data.assignee_id} is not an active user.")
    if data.team_id is not None and await tx.session.get(Team, data.team_id) is None:
        raise ProblemError(422, "team_not_found", f"There is no team with id {data.team_id}.")
    values: dict[str, object] = {"assignee_id": data.assignee_id, "updated_at": ts}
    if "team_id" in data.model_fields_set:
        values["team_id"] = data.team_id
        current = await tx.session.get(Queue, conv.queue_id) if conv.queue_id is not None else None
        if current is not None and current.team_id is not None and current.team_id != data.team_id:
            values["queue_id"] = None  # handed to another team: its agents serve it, not the old team's queue
    if data.queue_id is not None:
        queue = await tx.session.get(Queue, data.queue_id)
        if queue is None:
            raise ProblemError(422, "queue_not_found", f"queue_id: there is no queue with id {data.queue_id}.")
        values["queue_id"] = queue.id
        if "team_id" not in data.model_fields_set and queue.team_id is not None:
            values["team_id"] = queue.team_id
        values.update(routing_hold="free", hold_until=None)  # a deliberate transfer: the queue's agents, now
    to_status = None
    reason, code = "", ""
    params: dict[str, object] = {"by": principal.name, "note": data.note or ""}
    if conv.status != "resolved":
        to_status = "assigned" if data.assignee_id else "queued"
        assignee = await tx.session.get(User, data.assignee_id) if data.assignee_id else None
        code = "unassigned" if data.assignee_id is None else "assigned"
        who = "unassigned" if assignee is None else f"assigned to {assignee.name}"
        if assignee is not None:
            params.update(agent_id=assignee.id, agent=assignee.name)
        if data.queue_id is not None and data.assignee_id is None:
            target = await tx.session.get(Queue, data.queue_id)
            queue_name = target.name if target is not None else str(data.queue_id)
            code, who = "transferred_queue", f"transferred to queue {queue_name}"
            params.update(queue_id=data.queue_id, queue=queue_name)
        reason = f"{who} by {principal.name}" + (f": {data.note}" if data.note else "")
        values["assigned_at" if to_status == "assigned" else "queued_at"] = ts
    team_after = values.get("team_id", conv.team_id)
    change = lifecycle.move(lifecycle.Now.of(conv), to_status, at=ts, reason=reason, code=code, params=params,
                            actor_user_id=principal.user_id,
                            values=values, changes={"assignee_id": [before[0], data.assignee_id],
                                                    "team_id": [before[1], team_after]})
    if to_status is None:  # a resolved conversation changes hands without a line in its timeline
        change = replace(change, transition=None)
    lifecycle.apply(tx, conv, change)
    if data.note:
        note = Message(conversation_id=conv.id, direction="internal", sender_type="agent",
                       sender_user_id=principal.user_id, kind="note", text=data.note, created_at=ts,
                       payload={"handover": {"from_assignee_id": before[0], "to_assignee_id": data.assignee_id,
                                             "to_team_id": conv.team_id}})
        tx.session.add(note)
    await tx.session.flush()
    return conv


async def do_set_status(tx: Tx, principal: Principal, conversation_id: int, data: StatusRequest) -> Conversation:
    """Resolve, reopen, return to the queue, wait for the customer, or snooze."""
    conv = await get_visible_conversation(tx, principal, conversation_id)
    ts = now()
    old = conv.status
    target: str = data.status
    if target == "open":
        if old not in ("resolved", "waiting", "snoozed"):
            raise ProblemError(409, "already_open", f"The conversation is already open ({old}).")
        target = "assigned" if conv.assignee_id else "queued"
    elif target == old and target != "snoozed":  # snoozing again moves the wake-up time
        return conv
    elif old == "resolved":
        raise ProblemError(409, "conversation_resolved", "Reopen the conversation first (status 'open').")
    values: dict[str, object] = {}
    if old == "resolved" and target != "resolved":
        values.update(reopened_at=ts, resolved_at=None)
    if target == "snoozed":
        if data.snoozed_until is None or data.snoozed_until.tzinfo is None or data.snoozed_until <= ts:
            raise ProblemError(422, "snooze_needs_future_time",
                               "snoozed_until must be a future time with a timezone, e.g. 2030-01-01T09:00:00Z.")
        values["snoozed_until"] = data.snoozed_until
        await do_schedule(tx, kind=UNSNOOZE, subject_type="conversation", subject_id=conv.id,
                          due_at=data.snoozed_until)
    else:
        if old == "snoozed":
            await do_cancel(tx, kind=UNSNOOZE, subject_type="conversation", subject_id=conv.id)
        values["snoozed_until"] = None
    if target == "queued":
        values.update(assignee_id=None, queued_at=ts)
    values["waiting_since"] = ts if target == "waiting" else None
    if target == "resolved":
        values["resolved_at"] = ts
    lifecycle.apply(tx, conv, lifecycle.move(lifecycle.Now.of(conv), target, at=ts, values=values,
                                             reason=data.reason or f"set by {principal.name}",
                                             code="status_set", params={"by": principal.name,
                                                                        "note": data.reason or ""},
                                             actor_user_id=principal.user_id, changes={"status": [old, target]}))
    await tx.session.flush()
    return conv


async def do_update_conversation(tx: Tx, principal: Principal, conversation_id: int,
                                 data: ConversationUpdate) -> Conversation:
    conv = await get_visible_conversation(tx, principal, conversation_id)
    fields = data.model_dump(exclude_unset=True, exclude_none=True)
    lifecycle.apply(tx, conv, lifecycle.announce(lifecycle.Now.of(conv), values={**fields, "updated_at": now()},
                                                 **fields))
    return conv


async def do_set_labels(tx: Tx, principal: Principal, conversation_id: int, labels: list[str]) -> list[str]:
    conv = await get_visible_conversation(tx, principal, conversation_id)
    wanted = sorted({label.lower() for label in labels})
    await tx.session.execute(delete(ConversationLabel).where(ConversationLabel.conversation_id == conv.id))
    tx.session.add_all([ConversationLabel(conversation_id=conv.id, label=label) for label in wanted])
    conv.updated_at = now()
    lifecycle.apply(tx, conv, lifecycle.announce(lifecycle.Now.of(conv), labels=wanted))
    return wanted
