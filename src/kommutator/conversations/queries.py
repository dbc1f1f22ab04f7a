"""Reads about conversations and messages, always filtered by what the principal may see."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kommutator.auth.principal import Principal
from kommutator.contacts.models import Contact
from kommutator.conversations.models import Attachment, Conversation, ConversationLabel, Message, Transition
from kommutator.conversations.schemas import AttachmentRead, ConversationRead, MessageRead, TransitionRead
from kommutator.errors import not_found


def visible(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """Agents see conversations of their teams, assigned to them, or of the customers they are the personal
    manager of; supervisors see all."""
    if principal.is_supervisor:
        return stmt
    managed = select(Contact.id).where(Contact.manager_id == principal.user_id)
    return stmt.where(or_(Conversation.assignee_id == principal.user_id,
                          Conversation.team_id.in_(principal.team_ids or {-1}),
                          Conversation.contact_id.in_(managed)))


async def manager_of(session: AsyncSession, conv: Conversation) -> int | None:
    return await session.scalar(select(Contact.manager_id).where(Contact.id == conv.contact_id))


async def may_see(session: AsyncSession, principal: Principal, conv: Conversation) -> bool:
    """The same grants as ``visible``, for one loaded conversation (docs/access.md)."""
    return (principal.can_see_conversation(team_id=conv.team_id, assignee_id=conv.assignee_id)
            or principal.can_see_conversation(team_id=None, assignee_id=None,
                                              manager_id=await manager_of(session, conv)))


async def get_conversation(session: AsyncSession, principal: Principal, conversation_id: int) -> Conversation:
    """A conversation the principal may see, else 404 exactly as for one that does not exist."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None or not await may_see(session, principal, conv):
        raise not_found("conversation", conversation_id)
    return conv


async def conversations_read(session: AsyncSession, convs: list[Conversation]) -> list[ConversationRead]:
    ids = [c.id for c in convs]
    labels: dict[int, list[str]] = defaultdict(list)
    names: dict[int, str] = {}
    if ids:
        for cid, label in (await session.execute(
            select(ConversationLabel.conversation_id, ConversationLabel.label)
            .where(ConversationLabel.conversation_id.in_(ids)).order_by(ConversationLabel.label)
        )).all():
            labels[cid].append(label)
        contact_ids = {c.contact_id for c in convs}
        names = dict((await session.execute(
            select(Contact.id, Contact.name).where(Contact.id.in_(contact_ids)))).all())
    return [ConversationRead.model_validate(c).model_copy(
        update={"labels": labels[c.id], "contact_name": names.get(c.contact_id, "")}) for c in convs]


async def messages_read(session: AsyncSession, messages: list[Message]) -> list[MessageRead]:
    ids = [m.id for m in messages]
    files: dict[int, list[AttachmentRead]] = defaultdict(list)
    if ids:
        for a in (await session.execute(select(Attachment).where(Attachment.message_id.in_(ids)))).scalars():
            files[a.message_id].append(AttachmentRead.model_validate(a))
    return [MessageRead.model_validate(m).model_copy(update={"attachments": files[m.id]}) for m in messages]


async def list_messages(session: AsyncSession, conversation_id: int, *, after_id: int | None = None,
                        before_id: int | None = None, limit: int = 100) -> list[Message]:
    """Messages in id order; ``after_id`` catches up a screen, ``before_id`` loads older history."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if after_id is not None:
        stmt = stmt.where(Message.id > after_id).order_by(Message.id).limit(limit)
        return list((await session.execute(stmt)).scalars())
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    rows = list((await session.execute(stmt.order_by(Message.id.desc()).limit(limit))).scalars())
    rows.reverse()
    return rows


async def list_transitions(session: AsyncSession, conversation_id: int) -> list[TransitionRead]:
    rows = (await session.execute(select(Transition).where(Transition.conversation_id == conversation_id)
                                  .order_by(Transition.id))).scalars()
    return [TransitionRead.model_validate(t) for t in rows]
