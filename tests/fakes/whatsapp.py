"""A fake WhatsApp Cloud API (Graph API) server: a real HTTP server on 127.0.0.1 with the real wire format.

It answers ``POST /{version}/{phone_number_id}/messages``, ``POST /{version}/{phone_number_id}/media``
(multipart ``file``, ``type``, ``messaging_product``), ``GET /{version}/{media_id}`` and the media download
address it hands out, with Graph's answer and error shapes: a wrong bearer token is 401 with code 190,
interactive messages past WhatsApp's limits are 131009, a text over 4096 characters is 100, a free-form
message (text, interactive or media) more than 24 hours after the customer's last message (when the test
tells it that time) is 131047, an unknown template 132001. Uploads of a type Graph does not take are 100
with Graph's list of types, files over the type's limit 131053; a media message must name an uploaded
media id of a type its message type shows (131053 otherwise), with a caption only on image, video and
document (at most 1024 characters). Tests queue answers for the next sends (429 with Retry-After, 500,
130429, …) and uploads, register media and approved templates, read every request in ``calls``, every
upload in ``uploads`` and every accepted message in ``sent``. It also plays Meta's webhook side: ``deliver``
posts a payload signed with the app secret to our webhook, so statuses can arrive out of order, repeated, or
before the send was answered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kommutator.clock import now

from .serving import Served

ACCESS_TOKEN = "EAAGm0PX4ZCpsBO" + "ZCZAZBz7Xq3tK9vL2mN8pR4sT6uW1yY3zA5bC7dE9fG" * 3
APP_SECRET = "3f6b9c2e8a1d4f7b0c5e9a2d6f8b1c4e"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"
CUSTOMER = "972987654321"
VERSION = re.compile(r"v\d{1,3}\.\d{1,2}")
MAX_TEXT = 4096
MAX_CAPTION = 1024
REPLY_WINDOW = dt.timedelta(hours=24)
MB = 1024 * 1024
# What Graph's /media takes (its error 100 lists them), and the largest file of each.
UPLOAD_LIMITS = {
    **dict.fromkeys(["image/jpeg", "image/png"], 5 * MB),
    **dict.fromkeys(["video/mp4", "video/3gpp", "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg",
                     "audio/opus"], 16 * MB),
    **dict.fromkeys(["image/webp", "text/plain", "application/pdf", "application/msword", "application/vnd.ms-excel",
                     "application/vnd.ms-powerpoint",
                     "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     "application/vnd.openxmlformats-officedocument.presentationml.presentation"], 100 * MB),
}
# The uploaded types each media message shows (documents show any uploaded file).
SHOWN = {"image": {"image/jpeg", "image/png"}, "video": {"video/mp4", "video/3gpp"},
         "audio": {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg", "audio/opus"},
         "sticker": {"image/webp"}, "document": set(UPLOAD_LIMITS)}
CAPTIONED = {"image", "video", "document"}


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass
class Upload:
    """A file Graph accepted into the number's media store."""

    media_id: str
    data: bytes
    mime_type: str
    filename: str


@dataclass
class Answer:
    """A programmed answer to the next send (or media request): an HTTP status and Graph error code."""

    status: int
    code: int | None = None
    message: str = ""
    details: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def too_many_requests(cls, retry_after: int | None = None, code: int = 80007) -> Answer:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return cls(429, code, "(#80007) Rate limit hit", "Too many calls to this WhatsApp Business account", headers)

    @classmethod
    def throughput_limit(cls) -> Answer:
        return cls(400, 130429, "(#130429) Rate limit hit",
                   "Cloud API message throughput has been reached.")

    @classmethod
    def server_error(cls) -> Answer:
        return cls(500, 131000, "(#131000) Something went wrong", "Something went wrong")

    @classmethod
    def graph_error(cls, code: int, message: str, details: str = "", status: int = 400) -> Answer:
        return cls(status, code, message, details)


def graph_error(status: int, code: int, message: str, details: str = "", *,
                headers: dict[str, str] | None = None, subcode: int | None = None) -> JSONResponse:
    """Graph's error shape."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                             "fbtrace_id": "AbCdEfGhIjKlMnOp"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status_code=status, headers=headers)


class Refused(Exception):
    def __init__(self, code: int, message: str, details: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.details, self.status = code, message, details, status


def _invalid(details: str) -> Refused:
    return Refused(131009, "(#131009) Parameter value is not valid", details)


def _length(value: Any, low: int, high: int, what: str) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise _invalid(f"{what} length invalid. Min length: {low}, Max length: {high}")


def check_interactive(interactive: Any) -> None:
    """WhatsApp's limits for reply buttons and lists."""
    if not isinstance(interactive, dict):
        raise Refused(100, "(#100) Param interactive must be an object")
    kind = interactive.get("type")
    body = interactive.get("body")
    if not isinstance(body, dict):
        raise Refused(100, "(#100) The parameter interactive['body'] is required.")
    _length(body.get("text"), 1, 1024, "Body text")
    action = interactive.get("action")
    if not isinstance(action, dict):
        raise Refused(100, "(#100) The parameter interactive['action'] is required.")
    if kind == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _invalid("Buttons count invalid. Min: 1, Max: 3")
        titles, ids = [], []
        for button in buttons:
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(button, dict) or button.get("type") != "reply" or not isinstance(reply, dict):
                raise _invalid("Button type must be 'reply'")
            _length(reply.get("title"), 1, 20, "Button title")
            _length(reply.get("id"), 1, 256, "Button id")
            titles.append(reply["title"])
            ids.append(reply["id"])
        if len(set(titles)) != len(titles):
            raise _invalid("Button title must be unique")
        if len(set(ids)) != len(ids):
            raise _invalid("Button id must be unique")
        return
    if kind == "list":
        _length(action.get("button"), 1, 20, "Button label")
        sections = action.get("sections")
        if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
            raise _invalid("Sections count invalid. Min: 1, Max: 10")
        rows = []
        for section in sections:
            if not isinstance(section, dict) or not isinstance(section.get("rows"), list):
                raise _invalid("Every section needs rows")
            if len(sections) > 1:
                _length(section.get("title"), 1, 24, "Section title")
            rows.extend(section["rows"])
        if not 1 <= len(rows) <= 10:
            raise _invalid("Rows count invalid. Min: 1, Max: 10")
        for row in rows:
            if not isinstance(row, dict):
                raise _invalid("Every row must be an object")
            _length(row.get("id"), 1, 200, "Row id")
            _length(row.get("title"), 1, 24, "Row title")
            if "description" in row:
                _length(row.get("description"), 1, 72, "Row description")
        if len({r["id"] for r in rows}) != len(rows):
            raise _invalid("Row id must be unique")
        return
    raise Refused(100, f"(#100) Param interactive['type'] must be one of {{button, list}}, got {kind!r}")


class FakeWhatsApp:
    """The Graph API for one business phone number, plus Meta's side of our webhook."""

    def __init__(self, *, access_token: str = ACCESS_TOKEN, app_secret: str = APP_SECRET,
                 phone_number_id: str = PHONE_NUMBER_ID) -> None:
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []  # accepted message bodies, each with the wamid under "id"
        self.answers: list[Answer | None] = []  # for the next sends, in order; None: answer as usual
        self.media_answers: list[Answer] = []  # for the next media look-ups
        self.upload_answers: list[Answer | None] = []  # for the next uploads; None: answer as usual
        self.media: dict[str, tuple[bytes, str]] = {}
        self.uploads: list[Upload] = []  # accepted uploads, in order
        self.templates: dict[tuple[str, str], int] = {}  # (name, language) -> number of body parameters
        self.last_customer_message: dict[str, dt.datetime] = {}
        # Called with each accepted message before the answer goes back (e.g. to deliver a status early).
        self.on_send: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.base_url = ""
        self._ids = itertools.count(1)
        self._http = Served()

    # --- The server ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/lookaside/whatsapp_business/attachments/", self._download, methods=["GET"]),
            Route("/{version}/{phone_number_id}/messages", self._messages, methods=["POST"]),
            Route("/{version}/{phone_number_id}/media", self._upload, methods=["POST"]),
            Route("/{version}/{media_id}", self._media, methods=["GET"]),
        ])
        self.base_url = await self._http.start(app)

    async def stop(self) -> None:
        await self._http.stop()

    async def _record(self, request: Request) -> Call:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        call = Call(request.method, request.url.path, dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()}, body)
        self.calls.append(call)
        return call

    def _authorised(self, call: Call) -> bool:
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.access_token.encode())

    @staticmethod
    def _bad_token() -> JSONResponse:
        return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")

    @staticmethod
    def _unknown_object(method: str, ident: str) -> JSONResponse:
        return graph_error(400, 100, f"Unsupported {method} request. Object with ID '{ident}' does not exist, cannot "
                                     "be loaded due to missing permissions, or does not support this operation.",
                           subcode=33)

    @staticmethod
    def _programmed(answer: Answer) -> Response:
        if answer.code is None:
            return Response(status_code=answer.status, headers=answer.headers)
        return graph_error(answer.status, answer.code, answer.message, answer.details, headers=answer.headers)

    async def _messages(self, request: Request) -> Response:
        call = await self._record(request)
        if not VERSION.fullmatch(request.path_params["version"]):
            return graph_error(400, 2500, "Unknown path components")
        if not self._authorised(call):
            return self._bad_token()
        if request.path_params["phone_number_id"] != self.phone_number_id:
            return self._unknown_object("post", request.path_params["phone_number_id"])
        planned = self.answers.pop(0) if self.answers else None
        if planned is not None:
            return self._programmed(planned)
        body = call.body
        try:
            self._check_message(body)
        except Refused as exc:
            return graph_error(exc.status, exc.code, exc.message, exc.details)
        wamid = f"wamid.HBgLOTcyOTg3NjU0MzIxFQIAERgS{next(self._ids):06d}AA=="
        self.sent.append({**body, "id": wamid})
        if self.on_send is not None:
            await self.on_send({**body, "id": wamid})
        return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                             "messages": [{"id": wamid}]})

    def _check_message(self, body: Any) -> None:
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise Refused(100, "(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise Refused(100, "(#100) The parameter to is required.")
        kind = body.get("type", "text")
        if kind != "template":
            last = self.last_customer_message.get(to)
            if last is not None and now() - last > REPLY_WINDOW:
                raise Refused(131047, "(#131047) Re-engagement message",
                              "Message failed to send because more than 24 hours have passed since the customer "
                              "last replied to this number.")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("body"), str) or not text["body"]:
                raise Refused(100, "(#100) The parameter text['body'] is required.")
            if len(text["body"]) > MAX_TEXT:
                raise Refused(100, f"(#100) Param text['body'] must be at most {MAX_TEXT} characters long.")
        elif kind == "interactive":
            check_interactive(body.get("interactive"))
        elif kind == "template":
            self._check_template(body.get("template"))
        elif kind in SHOWN:
            self._check_media(kind, body.get(kind))
        else:
            raise Refused(100, f"(#100) Param type must be one of {{text, interactive, template, ...}}, got {kind!r}")

    def _check_media(self, kind: str, media: Any) -> None:
        if not isinstance(media, dict):
            raise Refused(100, f"(#100) The parameter {kind} is required.")
        if "link" in media:
            raise Refused(100, f"(#100) This fake serves uploaded media only: pass {kind}['id']")
        media_id = media.get("id")
        if not isinstance(media_id, str) or media_id not in self.media:
            raise Refused(131053, "(#131053) Media upload error",
                          f"Media {media_id!r} does not exist or has expired; upload it again")
        mime = self.media[media_id][1]
        if mime not in SHOWN[kind]:
            raise Refused(131053, "(#131053) Media upload error", f"Unsupported {kind} mime type {mime}.")
        if "caption" in media:
            if kind not in CAPTIONED:
                raise Refused(100, f"(#100) Param {kind}['caption'] is not a valid parameter.")
            caption = media["caption"]
            if not isinstance(caption, str) or len(caption) > MAX_CAPTION:
                raise Refused(100, f"(#100) Param {kind}['caption'] must be at most {MAX_CAPTION} characters long.")
        if "filename" in media and (kind != "document" or not isinstance(media["filename"], str)):
            raise Refused(100, f"(#100) Param {kind}['filename'] is not a valid parameter.")
        unknown = set(media) - {"id", "caption", "filename"}
        if unknown:
            raise Refused(100, f"(#100) Unexpected key {sorted(unknown)[0]!r} on param {kind}.")

    async def _upload(self, request: Request) -> Response:
        form = await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            else:
                data = await value.read()
                fields[key] = {"filename": value.filename, "content_type": value.content_type, "data": data}
        call = Call(request.method, request.url.path, dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()}, fields)
        self.calls.append(call)
        if not VERSION.fullmatch(request.path_params["version"]):
            return graph_error(400, 2500, "Unknown path components")
        if not self._authorised(call):
            return self._bad_token()
        if request.path_params["phone_number_id"] != self.phone_number_id:
            return self._unknown_object("post", request.path_params["phone_number_id"])
        planned = self.upload_answers.pop(0) if self.upload_answers else None
        if planned is not None:
            return self._programmed(planned)
        try:
            upload = self._check_upload(fields)
        except Refused as exc:
            return graph_error(exc.status, exc.code, exc.message, exc.details)
        self.media[upload.media_id] = (upload.data, upload.mime_type)
        self.uploads.append(upload)
        return JSONResponse({"id": upload.media_id})

    def _check_upload(self, fields: dict[str, Any]) -> Upload:
        if fields.get("messaging_product") != "whatsapp":
            raise Refused(100, "(#100) The parameter messaging_product is required.")
        file = fields.get("file")
        if not isinstance(file, dict):
            raise Refused(100, "(#100) The parameter file is required.")
        mime = fields.get("type")
        if not isinstance(mime, str) or not mime:
            raise Refused(100, "(#100) The parameter type is required.")
        if mime not in UPLOAD_LIMITS:
            raise Refused(100, "(#100) Param file must be a file with one of the following types: "
                               f"{', '.join(UPLOAD_LIMITS)}. Received file of type '{mime}'.")
        data = file["data"]
        if not data:
            raise Refused(131053, "(#131053) Media upload error", "The uploaded file is empty.")
        if len(data) > UPLOAD_LIMITS[mime]:
            raise Refused(131053, "(#131053) Media upload error",
                          f"File size ({len(data)} bytes) exceeds the limit of {UPLOAD_LIMITS[mime]} bytes for "
                          f"{mime}.")
        return Upload(f"{1037543291543636 + next(self._ids)}", data, mime, file["filename"] or "")

    def _check_template(self, template: Any) -> None:
        if not isinstance(template, dict) or not isinstance(template.get("language"), dict):
            raise Refused(100, "(#100) The parameter template['language'] is required.")
        name, language = template.get("name"), template["language"].get("code")
        if (name, language) not in self.templates:
            raise Refused(132001, "(#132001) Template name does not exist in the translation",
                          f"template name ({name}) does not exist in {language}")
        given: list[Any] = []
        for component in template.get("components") or []:
            if component.get("type") == "body":
                given.extend(component.get("parameters") or [])
        if len(given) != self.templates[(name, language)]:
            raise Refused(132000, "(#132000) Number of parameters does not match the expected number of params",
                          f"body: number of localizable_params ({len(given)}) does not match the expected number "
                          f"of params ({self.templates[(name, language)]})")
        for p in given:
            if re.search(r"[\n\t]| {5,}", str(p.get("text", ""))):
                raise Refused(132018, "(#132018) There was an issue with the parameters in your template.",
                              "Param text cannot have new-line/tab characters or more than 4 consecutive spaces")

    async def _media(self, request: Request) -> Response:
        call = await self._record(request)
        if not self._authorised(call):
            return self._bad_token()
        if self.media_answers:
            return self._programmed(self.media_answers.pop(0))
        media_id = request.path_params["media_id"]
        if media_id == self.phone_number_id:  # the phone number object (what a token check reads)
            return JSONResponse({"verified_name": "Shop", "code_verification_status": "VERIFIED",
                                 "display_phone_number": "+1 555-078-3881", "quality_rating": "GREEN",
                                 "id": self.phone_number_id})
        number = call.query.get("phone_number_id")
        if media_id not in self.media or (number is not None and number != self.phone_number_id):
            return self._unknown_object("get", media_id)
        data, mime = self.media[media_id]
        return JSONResponse({
            "messaging_product": "whatsapp", "id": media_id, "mime_type": mime, "file_size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "url": f"{self.base_url}/lookaside/whatsapp_business/attachments/?mid={media_id}&ext=1697043379"
                   f"&hash=ATuK{media_id[-4:]}"})

    async def _download(self, request: Request) -> Response:
        call = await self._record(request)
        if not self._authorised(call):
            return Response("Unauthorized", status_code=401)
        found = self.media.get(call.query.get("mid", ""))
        if found is None:
            return Response(status_code=404)
        return Response(found[0], media_type=found[1])

    # --- What the tests read and arrange ------------------------------------------------------------

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    def answer(self, *answers: Answer | None) -> None:
        self.answers.extend(answers)

    def answer_upload(self, *answers: Answer | None) -> None:
        self.upload_answers.extend(answers)

    def sends(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/messages")]

    def upload_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.endswith("/media")]

    def file_of(self, message: dict[str, Any]) -> tuple[bytes, str]:
        """The bytes and type of the uploaded file a sent media message shows."""
        return self.media[message[message["type"]]["id"]]

    # --- Meta's side of our webhook -----------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret if secret is not None else self.app_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    async def deliver(self, client: httpx.AsyncClient, url: str, payload: dict[str, Any] | bytes, *,
                      signature: str | None = None) -> httpx.Response:
        """POST a webhook to our app as Meta does: compact JSON, signed with the app secret."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "x-hub-signature-256": signature or self.sign(body),
                   "user-agent": "facebookexternalua"}
        return await client.post(url, content=body, headers=headers)

    def _envelope(self, value: dict[str, Any]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": self.phone_number_id},
                      **value},
            "field": "messages"}]}]}

    def status_payload(self, wamid: str, status: str, *, recipient: str = CUSTOMER,
                       errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(now().timestamp())),
                                 "recipient_id": recipient}
        if status != "failed":
            entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
        if errors:
            entry["errors"] = errors
        return self._envelope({"statuses": [entry]})

    def message_payload(self, message: dict[str, Any], *, sender: str = CUSTOMER,
                        name: str = "Анна Петрова") -> dict[str, Any]:
        """A customer's message; ``message`` holds its id, type and content."""
        full = {"from": sender, "timestamp": str(int(now().timestamp())), **message}
        return self._envelope({"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [full]})

    def text_payload(self, wamid: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.message_payload({"id": wamid, "type": "text", "text": {"body": text}}, **kw)
