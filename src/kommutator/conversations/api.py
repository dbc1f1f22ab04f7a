"""/api/v1/conversations: list, read, reply, note, assign, status, labels."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from sqlalchemy import and_, or_, select

from kommutator.audit.actions import audit_read
from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.pagination import CursorQuery, decode_time_id_cursor, encode_time_id_cursor
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.contacts import card
from kommutator.contacts.models import Contact
from kommutator.contacts.queries import contacts_read, search_clause
from kommutator.conversations import actions, queries
from kommutator.conversations.models import STATUSES, Conversation, ConversationLabel, Message
from kommutator.conversations.schemas import (
    AssignRequest,
    ConversationDetail,
    ConversationList,
    ConversationRead,
    ConversationUpdate,
    LabelsRequest,
    LastMessage,
    MessageCreate,
    MessageList,
    MessageRead,
    StatusRequest,
)
from kommutator.errors import ProblemError
from kommutator.inbox.queries import last_messages, message_search, unread_counts

router = APIRouter(tags=["conversations"], route_class=SafeRoute)

StatusFilter = Literal["bot", "queued", "assigned", "waiting", "snoozed", "resolved", "open"]


@router.get("/conversations", response_model=ConversationList)
async def list_conversations(
    rt: RuntimeDep, principal: CurrentPrincipal,
    view: Literal["all", "mine", "unassigned"] = Query("all", description="mine: assigned to me"),
    status: list[StatusFilter] | None = Query(None, description="Repeat to combine; 'open' = not resolved"),
    assignee_id: int | None = Query(None, ge=1, le=MAX_ID),
    team_id: int | None = Query(None, ge=1, le=MAX_ID),
    queue_id: int | None = Query(None, ge=1, le=MAX_ID),
    channel_id: int | None = Query(None, ge=1, le=MAX_ID, description="Channel of the customer's latest message"),
    contact_id: int | None = Query(None, ge=1, le=MAX_ID),
    label: str | None = Query(None, max_length=50),
    q: str | None = Query(None, max_length=200,
                          description="Search the contact's name, email, phone, ids, and the messages' text"),
    limit: int = Query(50, ge=1, le=200),
    cursor: CursorQuery = None,
) -> ConversationList:
    """Newest activity first, with cursor pagination."""
    stmt = queries.visible(select(Conversation), principal)
    if view == "mine":
        stmt = stmt.where(Conversation.assignee_id == principal.user_id)
    elif view == "unassigned":
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    if status:
        wanted: set[str] = set(status)
        if "open" in wanted:
            wanted |= set(STATUSES) - {"resolved"}
        stmt = stmt.where(Conversation.status.in_(wanted))
    for column, value in ((Conversation.assignee_id, assignee_id), (Conversation.team_id, team_id),
                          (Conversation.queue_id, queue_id), (Conversation.last_inbound_channel_id, channel_id),
                          (Conversation.contact_id, contact_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if label:
        stmt = stmt.where(Conversation.id.in_(select(ConversationLabel.conversation_id)
                                              .where(ConversationLabel.label == label.lower())))
    if q and q.strip():
        stmt = stmt.where(or_(Conversation.contact_id.in_(select(Contact.id).where(search_clause(q.strip()))),
                              Conversation.id.in_(message_search(q.strip()))))
    if cursor:
        at, last = decode_time_id_cursor(cursor)
        stmt = stmt.where(or_(Conversation.last_message_at < at,
                              and_(Conversation.last_message_at == at, Conversation.id < last)))
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit + 1)
    async with rt.db.read() as s:
        rows = list((await s.execute(stmt)).scalars())
        items = await queries.conversations_read(s, rows[:limit])
        unread = await unread_counts(s, principal.user_id, [c.id for c in items])
        latest = await last_messages(s, [c.id for c in items])
    items = [c.model_copy(update={"unread": unread.get(c.id, 0), "last_message": LastMessage(
        text=latest[c.id][0], direction=latest[c.id][1], kind=latest[c.id][2]) if c.id in latest else None})
        for c in items]
    nxt = None
    if len(rows) > limit:
        last_row = rows[limit - 1]
        nxt = encode_time_id_cursor(last_row.last_message_at, last_row.id)
    return ConversationList(items=items, next_cursor=nxt)


async def _detail(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: int,
                  limit: int = 100) -> ConversationDetail:
    async with rt.db.read() as s:
        conv = await queries.get_conversation(s, principal, conversation_id)
        (read,) = await queries.conversations_read(s, [conv])
        contact = await s.get(Contact, conv.contact_id)
        assert contact is not None
        (contact_read,) = await contacts_read(s, [contact])
        await card.fill(s, principal, contact.id, contact_read)  # the card beside the conversation
        messages = await queries.list_messages(s, conv.id, limit=limit)
        more = None
        if len(messages) == limit and await s.scalar(
            select(Message.id).where(Message.conversation_id == conv.id, Message.id < messages[0].id).limit(1)
        ):
            more = messages[0].id
        return ConversationDetail(**read.model_dump(), contact=contact_read,
                                  messages=await queries.messages_read(s, messages),
                                  transitions=await queries.list_transitions(s, conv.id),
                                  more_messages_before=more)


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                           limit: int = Query(100, ge=1, le=500)) -> ConversationDetail:
    """The conversation with its contact, latest messages and every transition (an audited read)."""
    detail = await _detail(rt, principal, conversation_id, limit)
    await audit_read(rt, principal, "conversation", conversation_id)
    if detail.assignee_id == principal.user_id and detail.status == "assigned" and detail.accepted_at is None:
        accepted = await rt.db.write(lambda tx: actions.do_accept(tx, principal, conversation_id))
        detail = detail.model_copy(update={"accepted_at": accepted})
    return detail


@router.get("/conversations/{conversation_id}/messages", response_model=MessageList)
async def list_messages(
    rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
    after_id: int | None = Query(None, ge=0, le=MAX_ID, description="Catch up: messages after this id"),
    before_id: int | None = Query(None, ge=1, le=MAX_ID, description="History: messages before this id"),
    limit: int = Query(100, ge=1, le=500),
) -> MessageList:
    if after_id is not None and before_id is not None:
        raise ProblemError(422, "conflicting_parameters", "Pass after_id or before_id, not both.")
    async with rt.db.read() as s:
        conv = await queries.get_conversation(s, principal, conversation_id)
        rows = await queries.list_messages(s, conv.id, after_id=after_id, before_id=before_id, limit=limit)
        items = await queries.messages_read(s, rows)
    # Messages page by id: pass the last id seen as after_id (or the first as before_id); no cursor needed.
    return MessageList(items=items)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageRead, status_code=201)
async def send_message(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                       body: MessageCreate) -> MessageRead:
    """Reply to the customer (through the outbox) or add a private note (kind 'note')."""
    msg = await rt.db.write(lambda tx: actions.do_send_message(tx, principal, conversation_id, body))
    return MessageRead.model_validate(msg)


@router.post("/conversations/{conversation_id}/assign", response_model=ConversationRead)
async def assign(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                 body: AssignRequest) -> ConversationRead:
    """Assign or transfer to an agent and/or team, with an optional handover note."""
    await rt.db.write(lambda tx: actions.do_assign(tx, principal, conversation_id, body))
    return await _read(rt, principal, conversation_id)


@router.post("/conversations/{conversation_id}/status", response_model=ConversationRead)
async def set_status(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                     body: StatusRequest) -> ConversationRead:
    await rt.db.write(lambda tx: actions.do_set_status(tx, principal, conversation_id, body))
    return await _read(rt, principal, conversation_id)


@router.patch("/conversations/{conversation_id}", response_model=ConversationRead)
async def update_conversation(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                              body: ConversationUpdate) -> ConversationRead:
    await rt.db.write(lambda tx: actions.do_update_conversation(tx, principal, conversation_id, body))
    return await _read(rt, principal, conversation_id)


@router.put("/conversations/{conversation_id}/labels", response_model=ConversationRead)
async def set_labels(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                     body: LabelsRequest) -> ConversationRead:
    await rt.db.write(lambda tx: actions.do_set_labels(tx, principal, conversation_id, body.labels))
    return await _read(rt, principal, conversation_id)


async def _read(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: int) -> ConversationRead:
    async with rt.db.read() as s:
        conv = await s.get(Conversation, conversation_id)
        if conv is None:  # erased meanwhile
            from kommutator.errors import not_found

            raise not_found("conversation", conversation_id)
        return (await queries.conversations_read(s, [conv]))[0]
