"""/api/v1/conversations/{id}/attachments (upload with a reply or note), /api/v1/attachments/{id}, and
/api/v1/messages/{id}/raw (the original a received message came from)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from sqlalchemy import select
from starlette.responses import FileResponse, Response

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import FILE, MAX_ID, Id
from kommutator.conversations import actions, queries
from kommutator.conversations.files import FileStore
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.conversations.schemas import MessageCreate, MessageRead
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.ingest.actions import raw_body
from kommutator.ingest.models import Channel, InboundEvent
from kommutator.runtime import Runtime

router = APIRouter(tags=["conversations"], route_class=SafeRoute)


def file_store(rt: Runtime) -> FileStore:
    return FileStore(rt.settings.data_dir / "files", rt.settings.max_upload_bytes)


@router.post("/conversations/{conversation_id}/attachments", response_model=MessageRead, status_code=201,
             name="upload_attachment")
async def upload(
    rt: RuntimeDep, principal: CurrentPrincipal, conversation_id: Id,
    file: Annotated[UploadFile, File(description="The file; see max_upload_bytes")],
    text: Annotated[str, Form(max_length=20000)] = "",
    kind: Annotated[Literal["text", "note"], Form()] = "text",
    channel_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
) -> MessageRead:
    """Send a file to the customer (or attach it to a private note), with an optional caption."""
    if "\x00" in text:
        raise ProblemError(422, "validation_failed", "text: must not contain NUL characters")
    store = file_store(rt)
    stored = await store.receive(file)
    data = MessageCreate.model_construct(text=text.strip(), kind=kind, channel_id=channel_id)

    async def job(tx: Tx) -> Message:
        return await actions.do_send_message(tx, principal, conversation_id, data, files=[stored])

    try:
        msg = await rt.db.write(job)
    except BaseException:
        store.discard(stored)
        raise
    store.commit(stored)
    async with rt.db.read() as s:
        (read,) = await queries.messages_read(s, [msg])
    return read


@router.get("/attachments/{attachment_id}", response_class=FileResponse, name="download_attachment",
            responses={200: {"description": "The file, in its own content type",
                             "content": {"application/octet-stream": {"schema": FILE}}}})
async def download(rt: RuntimeDep, principal: CurrentPrincipal, attachment_id: Id) -> FileResponse:
    """Download a file; always as an attachment, never rendered by the browser."""
    async with rt.db.read() as s:
        att = await s.get(Attachment, attachment_id)
        msg = await s.get(Message, att.message_id) if att else None
        conv = await s.get(Conversation, msg.conversation_id) if msg else None
        # A file of a conversation the caller may not see is answered exactly like a missing file: the answer
        # must not say that the file, or which conversation, exists.
        if att is None or conv is None or not await queries.may_see(s, principal, conv):
            raise not_found("attachment", attachment_id)
    path = file_store(rt).path(att.storage_key)
    if not path.exists():
        raise ProblemError(410, "file_gone", "The file was removed from storage.")
    return FileResponse(path, media_type=att.content_type, filename=att.filename,
                        content_disposition_type="attachment")


@router.get("/messages/{message_id}/raw", response_class=Response, name="download_raw_message",
            responses={200: {"description": "The original as received (email: an .eml file)",
                             "content": {"message/rfc822": {"schema": FILE},
                                         "application/octet-stream": {"schema": FILE}}}})
async def download_raw(rt: RuntimeDep, principal: CurrentPrincipal, message_id: Id) -> Response:
    """The original a customer's message came from, byte for byte (for email the mail as received, an .eml
    file); 404 when the message is not visible or has no stored original (sent by us, or erased)."""
    async with rt.db.read() as s:
        msg = await s.get(Message, message_id)
        if msg is None:
            raise not_found("message", message_id)
        await queries.get_conversation(s, principal, msg.conversation_id)  # 404 unless visible
        # The first event linked to it is the one it came from (later ones: edits); an outgoing message's
        # linked events are status reports about it, not its original.
        event = None if msg.direction != "in" else (await s.execute(
            select(InboundEvent).where(InboundEvent.message_id == msg.id).order_by(InboundEvent.id).limit(1)
        )).scalar_one_or_none()
        channel = await s.get(Channel, msg.channel_id) if msg.channel_id else None
    if event is None:
        raise ProblemError(404, "raw_not_found", f"Message {message_id} has no stored original: only messages "
                                                 "received from a channel have one, and erasure removes it.")
    is_mail = channel is not None and channel.type == "email"
    name = f"message-{message_id}.{'eml' if is_mail else 'raw'}"
    return Response(raw_body(event), media_type="message/rfc822" if is_mail else "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
