"""/api/v1/conversations/{id}/attachments (upload with a reply or note) and /api/v1/attachments/{id}."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile
from starlette.responses import FileResponse

from kommutator.auth.deps import CurrentPrincipal, RuntimeDep
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import MAX_ID, Id
from kommutator.conversations import actions, queries
from kommutator.conversations.files import FileStore
from kommutator.conversations.models import Attachment, Message
from kommutator.conversations.schemas import MessageCreate, MessageRead
from kommutator.db import Tx
from kommutator.errors import ProblemError, not_found
from kommutator.runtime import Runtime

router = APIRouter(tags=["conversations"], route_class=SafeRoute)


def file_store(rt: Runtime) -> FileStore:
    return FileStore(rt.settings.data_dir / "files", rt.settings.max_upload_bytes)


@router.post("/conversations/{conversation_id}/attachments", response_model=MessageRead, status_code=201)
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


@router.get("/attachments/{attachment_id}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def download(rt: RuntimeDep, principal: CurrentPrincipal, attachment_id: Id) -> FileResponse:
    """Download a file; always as an attachment, never rendered by the browser."""
    async with rt.db.read() as s:
        att = await s.get(Attachment, attachment_id)
        msg = await s.get(Message, att.message_id) if att else None
        if att is None or msg is None:
            raise not_found("attachment", attachment_id)
        await queries.get_conversation(s, principal, msg.conversation_id)  # 404 unless visible
    path = file_store(rt).path(att.storage_key)
    if not path.exists():
        raise ProblemError(410, "file_gone", "The file was removed from storage.")
    return FileResponse(path, media_type=att.content_type, filename=att.filename,
                        content_disposition_type="attachment")
