"""The visitor endpoints under /widget: public (no agent login), each checked against the channel's
allowed_origins and, past the session, authenticated by the visitor's token. Every answer carries
``Access-Control-Allow-Origin`` (errors too, so the widget can show why it was refused); no cookies are used,
so a foreign page gains nothing from reading them that the token did not already give it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import EmailStr, Field
from sqlalchemy import select
from starlette.responses import FileResponse, JSONResponse, Response

from kommutator.auth.deps import client_ip
from kommutator.channels.base import InboundFile
from kommutator.channels.types.webchat import messages as msgs
from kommutator.channels.types.webchat.models import WebchatVisitor
from kommutator.channels.types.webchat.schemas import (
    WidgetMessages,
    WidgetReceived,
    WidgetSession,
    WidgetVisitorUpdated,
)
from kommutator.channels.types.webchat.settings import file_type_allowed
from kommutator.channels.types.webchat.visitors import (
    Webchat,
    agents_online,
    authenticate_visitor,
    check_origin,
    check_rate,
    contact_of,
    do_open_session,
    do_update_visitor,
    has_bot,
    load_webchat,
    missing_prechat,
    visitor_by_token,
    visitor_read,
)
from kommutator.common.routes import SafeRoute
from kommutator.common.schemas import FILE, Id, Strict
from kommutator.conversations.files import safe_filename
from kommutator.conversations.files_api import file_store
from kommutator.conversations.inbound import FOR_PEOPLE
from kommutator.conversations.models import Attachment, Conversation, Message
from kommutator.errors import ProblemError, problem_response
from kommutator.runtime import Runtime

WIDGET_JS = Path(__file__).resolve().parents[3] / "web" / "static" / "widget" / "widget.js"
CLIENT_ID = r"^[A-Za-z0-9_-]{8,64}$"
PHONE = r"^\+?[0-9][0-9 ()-]{3,30}$"
_CORS = {"access-control-allow-origin": "*", "vary": "Origin"}


class WidgetRoute(SafeRoute):
    """Answer every request, refusals included, with the CORS header a foreign page needs to read it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except ProblemError as exc:
                headers = exc.extra.pop("headers", None)
                response = problem_response(exc.status, exc.code, exc.detail, headers=headers, **exc.extra)
            except RequestValidationError as exc:
                response = _invalid(exc)
            response.headers.update(_CORS)
            return response

        return with_cors


def _invalid(exc: RequestValidationError) -> JSONResponse:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return problem_response(400, "invalid_json", "The request body is not valid JSON.")
        field = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        errors.append({"field": field, "message": err.get("msg", "invalid")})
    first = errors[0] if errors else {"field": "body", "message": "invalid"}
    return problem_response(422, "validation_failed", f"{first['field']}: {first['message']}", errors=errors)


router = APIRouter(tags=["website chat"], route_class=WidgetRoute)
# The handlers answer dicts; the models declare them, leaving out what a handler leaves out.
_TYPED: dict[str, Any] = {"response_model_exclude_unset": True}
# Declared in the OpenAPI document as the ``widget`` security scheme (kommutator/openapi.py), not as a header.
Authorization = Annotated[str | None, Header(description="Bearer <visitor token>", include_in_schema=False)]


class SessionRequest(Strict):
    token: str | None = Field(default=None, max_length=200, description="The token this browser got before")
    language: Literal["en", "ru"] | None = None


class VisitorUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)


class VisitorMessage(Strict):
    client_id: str = Field(pattern=CLIENT_ID, description="The widget's id for the message; a resend is ignored")
    text: str = Field(default="", max_length=5000)
    button: str | None = Field(default=None, min_length=1, max_length=64,
                               description="The id of the button pressed (text: its label)")


class OfflineMessage(Strict):
    client_id: str = Field(pattern=CLIENT_ID)
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=5000)


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def _chat(request: Request, channel_id: int) -> Webchat:
    chat = await load_webchat(_rt(request), channel_id)
    check_origin(chat, request.headers.get("origin"))
    return chat


def _public(chat: Webchat, online: bool, max_upload: int, bot: bool) -> dict[str, Any]:
    s = chat.settings
    return {"id": chat.id, "title": s.title, "greeting": s.greeting, "color": s.color, "language": s.language,
            "position": s.position, "prechat_fields": list(s.prechat_fields), "offline_form": s.offline_form,
            "online": online, "bot": bot, "max_file_bytes": min(s.max_file_mb * 1_000_000, max_upload),
            "file_types": list(s.file_types),
            "invitations": [i.model_dump(exclude={"enabled"}) for i in s.invitations if i.enabled]}


@router.get("/widget.js", include_in_schema=False)
async def widget_js() -> Response:
    """The embeddable script (<script src=".../widget.js" data-channel="ID" async>)."""
    return FileResponse(WIDGET_JS, media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "public, max-age=300"})


@router.get("/widget.css", include_in_schema=False)
async def widget_css() -> Response:
    """The widget's styles; the script adopts them into its shadow root (fetched, so CORS must allow it)."""
    return FileResponse(WIDGET_JS.with_name("widget.css"), media_type="text/css; charset=utf-8",
                        headers={"cache-control": "public, max-age=300"})


@router.options("/widget/{rest:path}", include_in_schema=False)
async def preflight(rest: str) -> Response:
    return Response(status_code=204, headers={
        "access-control-allow-methods": "GET, POST, PATCH", "access-control-max-age": "600",
        "access-control-allow-headers": "authorization, content-type"})


@router.post("/widget/{channel_id}/session", response_model=WidgetSession, **_TYPED)
async def open_session(request: Request, channel_id: Id, body: SessionRequest) -> dict[str, Any]:
    """The visitor of this browser (a new one with a new token when it has none or a stale one), the chat's
    look and limits, and whether an agent is on duty."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    if body.token is None or await visitor_by_token(rt, chat, body.token) is None:
        await check_rate(rt, "visitor", f"{chat.id}:{client_ip(request)}")
    visitor, token = await rt.db.write(
        lambda tx: do_open_session(tx, chat=chat, token=body.token, language=body.language))
    online = await agents_online(rt, chat)
    return {"token": token, "renewed": token != body.token, "visitor": visitor_read(visitor),
            "missing": missing_prechat(chat, visitor),
            "channel": _public(chat, online, rt.settings.max_upload_bytes, await has_bot(rt, chat))}


@router.patch("/widget/{channel_id}/visitor", response_model=WidgetVisitorUpdated, **_TYPED)
async def update_visitor(request: Request, channel_id: Id, body: VisitorUpdate,
                         authorization: Authorization = None) -> dict[str, Any]:
    """The pre-chat form: name, email, phone."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    updated = await rt.db.write(lambda tx: do_update_visitor(
        tx, visitor_id=visitor.id, name=body.name, email=str(body.email) if body.email else None, phone=body.phone))
    return {"visitor": visitor_read(updated), "missing": missing_prechat(chat, updated)}


@router.get("/widget/{channel_id}/messages", response_model=WidgetMessages, **_TYPED)
async def list_messages(request: Request, channel_id: Id, authorization: Authorization = None,
                        after_id: Annotated[int, Query(ge=0)] = 0,
                        limit: Annotated[int, Query(ge=1, le=msgs.PAGE)] = 50) -> dict[str, Any]:
    """The visitor's own messages on this channel after ``after_id`` (never notes, never anyone else's)."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    contact_id = await contact_of(rt, visitor)
    found = [] if contact_id is None else await msgs.visible_messages(rt, chat, contact_id, after_id=after_id,
                                                                      limit=limit + 1)
    _, agent = await msgs.current_agent(rt, contact_id)
    return {"messages": found[:limit], "has_more": len(found) > limit, "agent": agent}


def _check_prechat(chat: Webchat, visitor: WebchatVisitor) -> None:
    missing = missing_prechat(chat, visitor)
    if missing:
        raise ProblemError(422, "prechat_required", f"Fill in the form first: {', '.join(missing)}.",
                           missing=missing)


@router.post("/widget/{channel_id}/messages", response_model=WidgetReceived, **_TYPED)
async def post_message(request: Request, channel_id: Id, body: VisitorMessage,
                       authorization: Authorization = None) -> dict[str, Any]:
    """A message (or a button press) from the visitor, committed before the answer; the same ``client_id``
    again is a no-op that answers the same message id."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    if not body.text and body.button is None:
        raise ProblemError(422, "empty_message", "Write a text, press a button or attach a file.")
    _check_prechat(chat, visitor)
    return await msgs.receive(rt, chat, visitor, client_id=body.client_id, text=body.text or body.button or "",
                              button=body.button)


@router.post("/widget/{channel_id}/offline", response_model=WidgetReceived, **_TYPED)
async def leave_message(request: Request, channel_id: Id, body: OfflineMessage,
                        authorization: Authorization = None) -> dict[str, Any]:
    """No agent on duty: the visitor leaves a message and an email address for the answer."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    email = str(body.email).lower()
    visitor = await rt.db.write(lambda tx: do_update_visitor(tx, visitor_id=visitor.id, name=body.name,
                                                             email=email))
    result = await msgs.receive(rt, chat, visitor, client_id=body.client_id, text=body.text,
                                extra={FOR_PEOPLE: True, "reply_to_email": email})
    contact_id = await contact_of(rt, visitor)
    if contact_id is not None:
        await msgs.fill_contact_email(rt, contact_id, email)
    return result


@router.post("/widget/{channel_id}/files", response_model=WidgetReceived, **_TYPED)
async def post_file(request: Request, channel_id: Id,
                    file: Annotated[UploadFile, File(description="The file (see the session's limits)")],
                    client_id: Annotated[str, Form(pattern=CLIENT_ID)],
                    text: Annotated[str, Form(max_length=5000)] = "",
                    authorization: Authorization = None) -> dict[str, Any]:
    """A message with one file, within the channel's size and type limits (refused with a clear reason)."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    _check_prechat(chat, visitor)
    limit = min(chat.settings.max_file_mb * 1_000_000, rt.settings.max_upload_bytes)
    ctype = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not file_type_allowed(chat.settings, ctype):
        raise ProblemError(415, "file_type_not_allowed",
                           f"Files of type {ctype} cannot be sent here; allowed: "
                           f"{', '.join(chat.settings.file_types)}.",
                           allowed=list(chat.settings.file_types))
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ProblemError(413, "file_too_large", f"Files may be at most {limit // 1_000_000} MB; this one is larger.",
                           max_bytes=limit)
    if not data:
        raise ProblemError(422, "empty_file", "The file is empty.")
    inbound = InboundFile(filename=safe_filename(file.filename), content_type=ctype, data=data)
    return await msgs.receive(rt, chat, visitor, client_id=client_id, text=text, files=(inbound,))


@router.get("/widget/{channel_id}/attachments/{attachment_id}", response_class=Response, name="download_attachment",
            responses={200: {"description": "The file, in its own content type",
                             "content": {"application/octet-stream": {"schema": FILE}}}})
async def download(request: Request, channel_id: Id, attachment_id: Id,
                   authorization: Authorization = None) -> Response:
    """A file of one of the visitor's own visible messages (404 for anything else)."""
    rt = _rt(request)
    chat = await _chat(request, channel_id)
    visitor = await authenticate_visitor(rt, chat, authorization)
    contact_id = await contact_of(rt, visitor)
    async with rt.db.read() as s:
        row = (await s.execute(
            select(Attachment).join(Message, Message.id == Attachment.message_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Attachment.id == attachment_id, Message.channel_id == chat.id, Message.kind == "text",
                   Message.direction.in_(("in", "out")), Conversation.contact_id == contact_id))).scalar()
    if row is None or contact_id is None:
        raise ProblemError(404, "attachment_not_found", f"There is no file with id {attachment_id} in your chat.")
    return FileResponse(file_store(rt).path(row.storage_key), media_type=row.content_type, filename=row.filename,
                        content_disposition_type="attachment", headers={"x-content-type-options": "nosniff"})
