"""A fake VK API: a real HTTP server on 127.0.0.1 that answers ``/method/messages.send`` like VK does.

Like VK it reads parameters from the query string and the form body, answers every API error with HTTP
200 and ``{"error": {"error_code", "error_msg", "request_params"}}``, checks the community token (error
5), the version (8), the parameters (100), the text length (914) and the keyboard format (911), and drops
a resend: the same non-zero ``random_id`` to the same peer returns the first message's id and delivers
nothing. Tests queue error codes or raw HTTP failures, read every call in ``calls`` and every delivered
message in ``delivered``, and publish attachment files at public URLs (documents behind a redirect, as
vk.com/doc… links are).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

TOKEN = "vk1.a.community-token-for-tests-0123456789"
GROUP_ID = 218000111
MAX_TEXT = 9000
_INT32 = 2**31 - 1

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


@dataclass
class Call:
    """One messages.send request, with its parameters and what it was answered."""

    params: dict[str, str]
    answer: dict[str, Any] = field(default_factory=dict)


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
        self._by_random_id: dict[tuple[int, int], int] = {}
        self._ids = itertools.count(1001)
        self._failures: list[int | tuple[int, str]] = []
        self._files: dict[str, bytes] = {}
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # --- What tests program ---------------------------------------------------------------------------

    def fail(self, *failures: int | tuple[int, str]) -> None:
        """Answer the next calls with these VK error codes (an int) or raw HTTP failures ((status, body))."""
        self._failures.extend(failures)

    def photo(self, name: str, data: bytes) -> str:
        """Publish a photo at a public URL, as VK's image storage does."""
        self._files[name] = data
        return f"{self.url}/userapi/{name}"

    def doc(self, name: str, data: bytes) -> str:
        """Publish a document behind a redirecting vk.com/doc… style link."""
        self._files[name] = data
        return f"{self.url}/doc/{name}"

    # --- The API --------------------------------------------------------------------------------------

    async def _messages_send(self, request: Request) -> Response:
        params: dict[str, str] = dict(request.query_params)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.form()).items() if isinstance(v, str)})
        call = Call(params)
        self.calls.append(call)
        if self._failures:
            failure = self._failures.pop(0)
            if isinstance(failure, tuple):
                return Response(failure[1], status_code=failure[0])
            call.answer = self._error(failure, params)
            return JSONResponse(call.answer)
        try:
            call.answer = {"response": self._send(params)}
        except VkApiError as exc:
            call.answer = self._error(exc.code, params, exc.detail)
        return JSONResponse(call.answer)

    def _error(self, code: int, params: dict[str, str], detail: str = "") -> dict[str, Any]:
        message = ERROR_MESSAGES.get(code, "Error")
        if detail:
            message = f"{message}: {detail}"
        shown = [{"key": k, "value": v} for k, v in params.items() if k != "access_token"]
        return {"error": {"error_code": code, "error_msg": message,
                          "request_params": [{"key": "method", "value": "messages.send"}, *shown]}}

    def _send(self, params: dict[str, str]) -> int:
        token = params.get("access_token")
        if not token:
            raise VkApiError(5, "no access_token passed")
        if token != self.token:
            raise VkApiError(5)
        if not params.get("v"):
            raise VkApiError(8)
        try:
            peer = int(params.get("peer_id", ""))
        except ValueError:
            raise VkApiError(100, "peer_id is undefined") from None
        raw_random = params.get("random_id")
        if raw_random is None:
            raise VkApiError(100, "random_id is a required parameter")
        try:
            random_id = int(raw_random)
        except ValueError:
            raise VkApiError(100, "random_id not integer") from None
        if not -_INT32 - 1 <= random_id <= _INT32:
            raise VkApiError(100, "random_id out of range")
        text = params.get("message", "")
        if not text.strip():
            raise VkApiError(100, "message is empty or invalid")
        if len(text) > MAX_TEXT:
            raise VkApiError(914)
        keyboard = _check_keyboard(params["keyboard"]) if "keyboard" in params else None
        if random_id != 0 and (peer, random_id) in self._by_random_id:
            return self._by_random_id[(peer, random_id)]  # a resend: VK answers with the first id, sends nothing
        message_id = next(self._ids)
        if random_id != 0:
            self._by_random_id[(peer, random_id)] = message_id
        self.delivered.append(Delivered(message_id, peer, text, random_id, keyboard))
        return message_id

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
            Route("/method/messages.send", self._messages_send, methods=["GET", "POST"]),
            Route("/userapi/{name}", self._file),
            Route("/doc/{name}", self._doc),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                     lifespan="off"))
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


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
