"""A fake VK API: a real HTTP server on 127.0.0.1 that answers ``messages.send`` and the upload methods like
VK does.

Like VK it reads parameters from the query string and the form body, answers every API error with HTTP
200 and ``{"error": {"error_code", "error_msg", "request_params"}}``, checks the community token (error
5), the version (8), the parameters (100), the text length (914) and the keyboard format (911), and drops
a resend: the same non-zero ``random_id`` to the same peer returns the first message's id and delivers
nothing. Files go as VK's do: ``photos.getMessagesUploadServer`` / ``docs.getMessagesUploadServer`` name an
upload URL; a multipart POST there (field ``photo`` / ``file``) answers ``{"server", "photo", "hash"}`` (with
``photo`` ``"[]"`` when no JPEG, PNG or GIF came) or ``{"file"}``, and upload errors as ``{"error",
"error_descr"}`` (a photo over 50 MB, a document over 200 MB, an MP3 or executable document);
``photos.saveMessagesPhoto`` checks the hash (121) and ``docs.save`` the file token (100); ``messages.send``
takes at most 10 ``attachment`` references to saved files. Tests queue API error codes or raw HTTP
failures (``fail``, ``fail_method``) and upload failures (``fail_upload``), read every API call in
``calls``, every upload in ``uploads`` and every delivered message in ``delivered``, and publish attachment
files at public URLs (documents behind a redirect, as vk.com/doc… links are).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .serving import Served

TOKEN = "vk1.a.community-token-for-tests-0123456789"
GROUP_ID = 218000111
MAX_TEXT = 9000
MAX_ATTACHMENTS = 10
MB = 1024 * 1024
PHOTO_LIMIT = 50 * MB
DOC_LIMIT = 200 * MB
REFUSED_EXTENSIONS = {"mp3", "exe", "msi", "apk", "bat", "cmd", "com", "scr"}
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_INT32 = 2**31 - 1
_ATTACHMENT = re.compile(r"(photo|doc)(-?\d+)_(\d+)(?:_([0-9a-f]+))?")

ERROR_MESSAGES = {
    1: "Unknown error occurred",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    7: "Permission to perform this action is denied",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    100: "One of the parameters specified was missing or invalid",
    121: "Invalid hash",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
    914: "Message is too long",
}


@dataclass
class Delivered:
    """A message VK delivered to a dialog."""

    message_id: int
    peer_id: int
    text: str
    random_id: int
    keyboard: dict[str, Any] | None
    attachments: list[str] = field(default_factory=list)


@dataclass
class Call:
    """One API request, with its parameters and what it was answered."""

    params: dict[str, str]
    answer: dict[str, Any] = field(default_factory=dict)
    method: str = "messages.send"


@dataclass
class Saved:
    """A file saved for messages (``photo…`` or ``doc…``), as the customer would get it."""

    kind: str
    owner_id: int
    id: int
    access_key: str
    data: bytes
    filename: str
    content_type: str

    @property
    def reference(self) -> str:
        return f"{self.kind}{self.owner_id}_{self.id}"


@dataclass
class Upload:
    """One POST to an upload URL: the field's file and the answer."""

    kind: str  # photo | doc
    fields: dict[str, Any]
    answer: Any = None


class VkApiError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _check_keyboard(raw: str) -> dict[str, Any]:
    try:
        kb = json.loads(raw)
    except ValueError:
        raise VkApiError(911, "keyboard is not JSON") from None
    rows = kb.get("buttons") if isinstance(kb, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise VkApiError(911, "buttons must be an array of arrays")
    inline = kb.get("inline") is True
    if inline and "one_time" in kb:
        raise VkApiError(911, "one_time is not allowed for inline keyboards")
    if len(rows) > (6 if inline else 10):
        raise VkApiError(911, "too many rows")
    buttons = [b for row in rows for b in row]
    if len(buttons) > (10 if inline else 40) or any(len(r) > 5 for r in rows):
        raise VkApiError(911, "too many buttons")
    for b in buttons:
        action = b.get("action") if isinstance(b, dict) else None
        if not isinstance(action, dict) or action.get("type") not in ("text", "callback"):
            raise VkApiError(911, "unsupported button action")
        label = action.get("label")
        if not isinstance(label, str) or not 0 < len(label) <= 40:
            raise VkApiError(911, "label must be 1 to 40 characters")
        payload = action.get("payload", "")
        if not isinstance(payload, str) or len(payload.encode()) > 255:
            raise VkApiError(911, "payload must be at most 255 bytes")
        if payload:
            json.loads(payload)
    return kb


class FakeVk:
    """VK's API on loopback; ``url`` is the api_base_url to give the channel."""

    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.url = ""
        self.calls: list[Call] = []
        self.delivered: list[Delivered] = []
        self.file_requests: list[str] = []
        self.uploads: list[Upload] = []
        self.saved: dict[str, Saved] = {}  # by reference, e.g. "photo-218000111_457239001"
        self._by_random_id: dict[tuple[int, int], int] = {}
        self._ids = itertools.count(1001)
        self._file_ids = itertools.count(457239001)
        self._failures: list[int | tuple[int, str]] = []
        self._method_failures: dict[str, list[int | tuple[int, str]]] = {}
        self._upload_failures: list[tuple[int, str]] = []
        self._pending_photos: dict[str, tuple[bytes, str, str]] = {}  # upload key -> data, name, type
        self._pending_docs: dict[str, tuple[bytes, str, str]] = {}  # file token -> data, name, type
        self._files: dict[str, bytes] = {}
        self._http = Served()

    # --- What tests program ---------------------------------------------------------------------------

    def fail(self, *failures: int | tuple[int, str]) -> None:
        """Answer the next calls with these VK error codes (an int) or raw HTTP failures ((status, body))."""
        self._failures.extend(failures)

    def fail_method(self, method: str, *failures: int | tuple[int, str]) -> None:
        """Answer the next calls of one method (e.g. "messages.send") with these failures."""
        self._method_failures.setdefault(method, []).extend(failures)

    def fail_upload(self, *failures: tuple[int, str]) -> None:
        """Answer the next POSTs to upload URLs with these raw HTTP answers ((status, body))."""
        self._upload_failures.extend(failures)

    def file_of(self, reference: str) -> Saved:
        """The saved file an ``attachment`` reference names (with or without its access key)."""
        match = _ATTACHMENT.fullmatch(reference)
        assert match is not None, reference
        return self.saved[f"{match[1]}{match[2]}_{match[3]}"]

    def photo(self, name: str, data: bytes) -> str:
        """Publish a photo at a public URL, as VK's image storage does."""
        self._files[name] = data
        return f"{self.url}/userapi/{name}"

    def doc(self, name: str, data: bytes) -> str:
        """Publish a document behind a redirecting vk.com/doc… style link."""
        self._files[name] = data
        return f"{self.url}/doc/{name}"

    # --- The API --------------------------------------------------------------------------------------

    async def _method(self, request: Request) -> Response:
        method = request.path_params["method"]
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        call = Call(params, method=method)
        self.calls.append(call)
        queue = self._method_failures.get(method) or self._failures
        if queue:
            failure = queue.pop(0)
            if isinstance(failure, tuple):
                return Response(failure[1], status_code=failure[0])
            call.answer = self._error(failure, method, params)
            return JSONResponse(call.answer)
        handlers = {"messages.send": self._send, "photos.getMessagesUploadServer": self._photo_server,
                    "photos.saveMessagesPhoto": self._save_photo, "docs.getMessagesUploadServer": self._doc_server,
                    "docs.save": self._save_doc, "groups.getById": self._group}
        try:
            if method not in handlers:
                raise VkApiError(3, "Unknown method passed")
            self._authorise(params)
            call.answer = {"response": handlers[method](params)}
        except VkApiError as exc:
            call.answer = self._error(exc.code, method, params, exc.detail)
        return JSONResponse(call.answer)

    def _error(self, code: int, method: str, params: dict[str, str], detail: str = "") -> dict[str, Any]:
        message = ERROR_MESSAGES.get(code, "Error")
        if detail:
            message = f"{message}: {detail}"
        shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
        return {"error": {"error_code": code, "error_msg": message,
                          "request_params": [{"key": "method", "value": method}, *shown]}}

    def _authorise(self, params: dict[str, str]) -> None:
        token = params.get("access_token")
        if not token:
            raise VkApiError(5, "no access_token passed")
        if token != self.token:
            raise VkApiError(5)
        if not params.get("v"):
            raise VkApiError(8)

    @staticmethod
    def _group(params: dict[str, str]) -> dict[str, Any]:
        """groups.getById with a community token and no group_id: the token's own community (API 5.199 shape)."""
        return {"groups": [{"id": GROUP_ID, "name": "Shop", "screen_name": "shop", "is_closed": 0, "type": "group"}],
                "profiles": []}

    @staticmethod
    def _peer(params: dict[str, str]) -> int:
        try:
            return int(params.get("peer_id", ""))
        except ValueError:
            raise VkApiError(100, "peer_id is undefined") from None

    def _send(self, params: dict[str, str]) -> int:
        peer = self._peer(params)
        raw_random = params.get("random_id")
        if raw_random is None:
            raise VkApiError(100, "random_id is a required parameter")
        try:
            random_id = int(raw_random)
        except ValueError:
            raise VkApiError(100, "random_id not integer") from None
        if not -_INT32 - 1 <= random_id <= _INT32:
            raise VkApiError(100, "random_id out of range")
        attachments = [a for a in params.get("attachment", "").split(",") if a]
        if len(attachments) > MAX_ATTACHMENTS:
            raise VkApiError(100, f"attachment: at most {MAX_ATTACHMENTS} attachments")
        for reference in attachments:
            self._check_attachment(reference)
        text = params.get("message", "")
        if not text.strip() and not attachments:
            raise VkApiError(100, "message is empty or invalid")
        if len(text) > MAX_TEXT:
            raise VkApiError(914)
        keyboard = _check_keyboard(params["keyboard"]) if "keyboard" in params else None
        if random_id != 0 and (peer, random_id) in self._by_random_id:
            return self._by_random_id[(peer, random_id)]  # a resend: VK answers with the first id, sends nothing
        message_id = next(self._ids)
        if random_id != 0:
            self._by_random_id[(peer, random_id)] = message_id
        self.delivered.append(Delivered(message_id, peer, text, random_id, keyboard, attachments))
        return message_id

    def _check_attachment(self, reference: str) -> None:
        match = _ATTACHMENT.fullmatch(reference)
        if match is None:
            raise VkApiError(100, f"attachment {reference!r} is invalid")
        saved = self.saved.get(f"{match[1]}{match[2]}_{match[3]}")
        if saved is None or (match[4] is not None and match[4] != saved.access_key):
            raise VkApiError(100, f"attachment {reference!r} is not found or not accessible")

    def _upload_url(self, kind: str, peer: int) -> str:
        return f"{self.url}/upload/{kind}?act=do_add&gid={GROUP_ID}&peer={peer}"

    def _photo_server(self, params: dict[str, str]) -> dict[str, Any]:
        peer = self._peer(params)
        return {"album_id": -64, "upload_url": self._upload_url("photo", peer), "user_id": 0, "group_id": GROUP_ID}

    def _doc_server(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("type", "doc") not in ("doc", "audio_message", "graffiti"):
            raise VkApiError(100, "type should be one of doc, audio_message, graffiti")
        return {"upload_url": self._upload_url("doc", self._peer(params))}

    def _photo_hash(self, photo: str) -> str:
        return hmac.new(self.token.encode(), photo.encode(), hashlib.md5).hexdigest()

    def _save(self, kind: str, data: bytes, name: str, content_type: str) -> Saved:
        saved = Saved(kind, -GROUP_ID, next(self._file_ids), hashlib.sha256(data).hexdigest()[:18], data, name,
                      content_type)
        self.saved[saved.reference] = saved
        return saved

    def _save_photo(self, params: dict[str, str]) -> list[dict[str, Any]]:
        photo, given = params.get("photo", ""), params.get("hash", "")
        try:
            listed = json.loads(photo)
        except ValueError:
            listed = []
        if not listed or not isinstance(listed, list):
            raise VkApiError(100, "photos_list is invalid")
        if not hmac.compare_digest(given, self._photo_hash(photo)) or params.get("server") != "842316":
            raise VkApiError(121)
        key = listed[0].get("photo") if isinstance(listed[0], dict) else None
        if key not in self._pending_photos:
            raise VkApiError(100, "photos_list is invalid")
        data, name, content_type = self._pending_photos.pop(key)
        saved = self._save("photo", data, name, content_type)
        return [{"album_id": -64, "date": 1_900_000_000, "id": saved.id, "owner_id": saved.owner_id,
                 "access_key": saved.access_key, "text": "", "has_tags": False,
                 "sizes": [{"height": 75, "width": 75, "type": "s", "url": f"{self.url}/userapi/p{saved.id}.jpg"}]}]

    def _save_doc(self, params: dict[str, str]) -> dict[str, Any]:
        token = params.get("file", "")
        if token not in self._pending_docs:
            raise VkApiError(100, "file is undefined or invalid")
        data, name, content_type = self._pending_docs.pop(token)
        title = params.get("title") or name
        saved = self._save("doc", data, title, content_type)
        ext = title.rsplit(".", 1)[-1].lower() if "." in title else ""
        return {"type": "doc", "doc": {"id": saved.id, "owner_id": saved.owner_id, "title": title,
                                       "size": len(data), "ext": ext, "date": 1_900_000_000, "type": 8,
                                       "url": f"{self.url}/doc/d{saved.id}", "access_key": saved.access_key}}

    async def _upload(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in ("photo", "doc"):
            return Response("not found", status_code=404)
        form = await request.form()
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            else:
                fields[key] = {"filename": value.filename or "", "content_type": value.content_type or "",
                               "data": await value.read()}
        upload = Upload(kind, fields)
        self.uploads.append(upload)
        if self._upload_failures:
            status, body = self._upload_failures.pop(0)
            upload.answer = body
            return Response(body, status_code=status)
        upload.answer = self._take_photo(fields) if kind == "photo" else self._take_doc(fields)
        return JSONResponse(upload.answer)

    def _take_photo(self, fields: dict[str, Any]) -> dict[str, Any]:
        file = fields.get("photo")
        if isinstance(file, dict) and len(file["data"]) > PHOTO_LIMIT:
            return {"error": "ERR_UPLOAD_FILE_TOO_BIG", "error_code": 2, "error_descr": "photo is larger than 50 MB"}
        if not isinstance(file, dict) or not file["data"].startswith(_IMAGE_MAGIC):
            photo = "[]"  # VK's answer when no picture came in the "photo" field
        else:
            key = hashlib.sha256(file["data"] + str(len(self.uploads)).encode()).hexdigest()[:32]
            self._pending_photos[key] = (file["data"], file["filename"], file["content_type"])
            photo = json.dumps([{"photo": key, "sizes": [], "kid": key[:8]}])
        return {"server": 842316, "photo": photo, "hash": self._photo_hash(photo)}

    def _take_doc(self, fields: dict[str, Any]) -> dict[str, Any]:
        file = fields.get("file")
        if not isinstance(file, dict) or not file["data"]:
            return {"error": "no_file", "error_descr": "no file in the 'file' field"}
        name = file["filename"]
        if (name.rsplit(".", 1)[-1].lower() if "." in name else "") in REFUSED_EXTENSIONS:
            return {"error": "ERR_UPLOAD_BAD_FILE_TYPE", "error_code": 3, "error_descr": "file type is not allowed"}
        if len(file["data"]) > DOC_LIMIT:
            return {"error": "ERR_UPLOAD_FILE_TOO_BIG", "error_code": 2, "error_descr": "file is larger than 200 MB"}
        token = hashlib.sha256(file["data"] + str(len(self.uploads)).encode()).hexdigest()
        self._pending_docs[token] = (file["data"], name, file["content_type"])
        return {"file": token}

    async def _file(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.file_requests.append(request.url.path)
        if name not in self._files:
            return Response("not found", status_code=404)
        return Response(self._files[name], media_type="application/octet-stream")

    async def _doc(self, request: Request) -> Response:
        self.file_requests.append(request.url.path)
        return RedirectResponse(f"/userapi/{request.path_params['name']}", status_code=302)

    # --- Running --------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/method/{method}", self._method, methods=["GET", "POST"]),
            Route("/upload/{kind:str}", self._upload, methods=["POST"]),
            Route("/userapi/{name}", self._file),
            Route("/doc/{name}", self._doc),
        ])
        self.url = await self._http.start(app)

    async def stop(self) -> None:
        await self._http.stop()


def event(kind: str, obj: dict[str, Any] | None, *, secret: str, event_id: str, group_id: int = GROUP_ID,
          v: str = "5.199") -> dict[str, Any]:
    """A Callback API request body as VK sends it."""
    body: dict[str, Any] = {"group_id": group_id, "type": kind, "event_id": event_id, "v": v, "secret": secret}
    if obj is not None:
        body["object"] = obj
    return body


def message_new(*, from_id: int, text: str, message_id: int, cmid: int = 1, date: int = 1_900_000_000,
                payload: str | None = None, attachments: list[dict[str, Any]] | None = None,
                peer_id: int | None = None, lang_id: int = 0) -> dict[str, Any]:
    """The object of a message_new event (API 5.199: the message with client_info)."""
    message: dict[str, Any] = {
        "date": date, "from_id": from_id, "id": message_id, "out": 0, "version": 10000000 + message_id,
        "attachments": attachments or [], "conversation_message_id": cmid, "fwd_messages": [],
        "important": False, "is_hidden": False, "peer_id": peer_id if peer_id is not None else from_id,
        "random_id": 0, "text": text}
    if payload is not None:
        message["payload"] = payload
    return {"message": message, "client_info": {
        "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback", "intent_subscribe",
                           "intent_unsubscribe"],
        "keyboard": True, "inline_keyboard": True, "carousel": True, "lang_id": lang_id}}


def photo_attachment(url_small: str, url_large: str) -> dict[str, Any]:
    return {"type": "photo", "photo": {
        "album_id": -3, "date": 1_900_000_000, "id": 457239017, "owner_id": 100500, "access_key": "abc",
        "sizes": [{"height": 75, "type": "s", "width": 56, "url": url_small},
                  {"height": 1280, "type": "w", "width": 960, "url": url_large},
                  {"height": 130, "type": "m", "width": 97, "url": url_small}],
        "text": "", "has_tags": False}}


def doc_attachment(url: str, title: str, ext: str, size: int) -> dict[str, Any]:
    return {"type": "doc", "doc": {"id": 6612345, "owner_id": 100500, "title": title, "size": size, "ext": ext,
                                   "date": 1_900_000_000, "type": 1, "url": url, "access_key": "def"}}
