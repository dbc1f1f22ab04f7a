"""Merging two contacts merges their open conversations into one timeline (contacts/actions.do_merge_contacts).

The later open conversation folds into the earliest: its messages move there (attachments follow their messages),
its labels join, and it is closed — resolved, with ``merged_into_id`` naming the conversation that carries on and
a ``ConversationUpdated`` whose ``changes.merged_into`` tells open workspaces to follow. The earliest takes over
an agent or a place in the queue the folded one had when it was itself only waiting for the customer, so nobody's
unanswered message is left behind. Statuses change through the lifecycle (conversations/lifecycle.py).
"""

from __future__ import annotations

from sqlalchemy import select, update

from kommutator.clock import now
from kommutator.conversations import lifecycle
from kommutator.conversations.models import OPEN_STATUSES, Conversation, ConversationLabel, Message
from kommutator.db import Tx

# Which of two open conversations needs people more: the folded one's need passes to the one kept.
_NEED = {"assigned": 3, "queued": 2, "bot": 1, "waiting": 0, "snoozed": 0}


async def do_fold_open_conversations(tx: Tx, contact_id: int, *, actor_user_id: int | None) -> list[tuple[int, int]]:
    """Fold every open conversation of the contact but the earliest into it; the (folded, kept) pairs."""
    open_convs = list((await tx.session.execute(
        select(Conversation).where(Conversation.contact_id == contact_id, Conversation.status.in_(OPEN_STATUSES))
        .order_by(Conversation.created_at, Conversation.id).with_for_update())).scalars())
    if len(open_convs) < 2:
        return []
    keep, folded = open_convs[0], open_convs[1:]
    ts = now()
    labels = set((await tx.session.execute(
        select(ConversationLabel.label).where(ConversationLabel.conversation_id == keep.id))).scalars())
    pairs: list[tuple[int, int]] = []
    for conv in folded:
        await tx.session.execute(update(Message).where(Message.conversation_id == conv.id)
                                 .values(conversation_id=keep.id))
        for label in (await tx.session.execute(
                select(ConversationLabel.label).where(ConversationLabel.conversation_id == conv.id))).scalars():
            if label not in labels:
                labels.add(label)
                tx.session.add(ConversationLabel(conversation_id=keep.id, label=label))
        theirs, mine = conv.last_customer_message_at, keep.last_customer_message_at
        if theirs is not None and (mine is None or theirs > mine):  # a reply goes where the customer wrote last
            keep.last_customer_message_at = theirs
            keep.last_inbound_channel_id = conv.last_inbound_channel_id or keep.last_inbound_channel_id
        keep.last_message_at = max(keep.last_message_at, conv.last_message_at)
        if _NEED.get(conv.status, 0) > _NEED.get(keep.status, 0) and conv.status in ("assigned", "queued"):
            # The folded one had someone on it or a place in the queue: the conversation that carries on takes it.
            values = {"assignee_id": conv.assignee_id, "team_id": conv.team_id, "queue_id": conv.queue_id,
                      "assigned_at": conv.assigned_at, "accepted_at": conv.accepted_at, "queued_at": conv.queued_at,
                      "waiting_since": None, "snoozed_until": None}
            lifecycle.apply(tx, keep, lifecycle.move(
                lifecycle.Now.of(keep), conv.status, at=ts, values=values, actor_user_id=actor_user_id,
                reason=f"conversation {conv.id} merged into this one", code="merged_from",
                params={"conversation_id": conv.id},
                changes={"status": [keep.status, conv.status], "merged_from": conv.id}))
        else:
            lifecycle.apply(tx, keep, lifecycle.note(lifecycle.Now.of(keep), at=ts, code="merged_from",
                                                     reason=f"conversation {conv.id} merged into this one",
                                                     params={"conversation_id": conv.id}))
            lifecycle.apply(tx, keep, lifecycle.announce(lifecycle.Now.of(keep), merged_from=conv.id))
        lifecycle.apply(tx, conv, lifecycle.move(
            lifecycle.Now.of(conv), "resolved", at=ts, actor_user_id=actor_user_id,
            values={"resolved_at": ts, "waiting_since": None, "snoozed_until": None},
            reason=f"merged into conversation {keep.id}", code="merged_into", params={"conversation_id": keep.id},
            changes={"status": [conv.status, "resolved"], "merged_into": keep.id, "resolved_by": "merge"}))
        conv.merged_into_id = keep.id
        conv.updated_at = ts
        pairs.append((conv.id, keep.id))
    keep.updated_at = ts
    return pairs
