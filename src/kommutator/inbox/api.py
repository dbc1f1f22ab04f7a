"""/api/v1/conversations/{id}/read: the viewing user's read mark."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id, ReadModel, Strict
from kommutator.inbox.actions import do_mark_read
from kommutator.inbox.queries import unread_counts

router = APIRouter(tags=["conversations"], route_class=SafeRoute)


class ReadRequest(Strict):
    message_id: int | None = Field(None, ge=1, le=MAX_ID, description="Read up to this message; default: all")


class ReadState(ReadModel):
    conversation_id: int
    last_read_message_id: int
    unread: int = 0


@router.post("/conversations/{conversation_id}/read", response_model=ReadState)
async def mark_read(rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
                    body: ReadRequest | None = None) -> ReadState:
    """Mark the conversation read for you (other agents keep their own marks); unread counts drop to 0."""
    message_id = body.message_id if body else None
    last = await rt.db.write(lambda tx: do_mark_read(tx, principal, conversation_id, message_id))
    async with rt.db.read() as s:
        left = (await unread_counts(s, principal.user_id, [conversation_id])).get(conversation_id, 0)
    return ReadState(conversation_id=conversation_id, last_read_message_id=last, unread=left)
