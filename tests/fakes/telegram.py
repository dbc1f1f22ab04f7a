"""A fake Telegram Bot API server: a real HTTP server on 127.0.0.1 that speaks the Bot API's wire format.

It answers ``/bot<token>/<method>`` (parameters as JSON, form, multipart or query string, like the real
one) and ``/file/bot<token>/<file_path>`` with the real answers' shapes, including the errors: a wrong
token is 401, a text over 4096 characters or callback_data over 64 bytes is 400, a webhook makes
getUpdates 409. Tests queue updates for getUpdates, register files for getFile, make the next calls fail
(429 with retry_after, 500, 403 blocked) and read every call it received in ``calls``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .serving import Served

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw8"
BOT_ID = 123456789
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the fake received."""

    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    token: str = TOKEN


@dataclass
class Failure:
    """An error answer: ``status`` is the error_code; ``retry_after`` goes in parameters."""

    status: int
    description: str
    retry_after: int | None = None

    @classmethod
    def too_many_requests(cls, retry_after: int) -> Failure:
        return cls(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    @classmethod
    def server_error(cls) -> Failure:
        return cls(500, "Internal Server Error")

    @classmethod
    def blocked(cls) -> Failure:
        return cls(403, "Forbidden: bot was blocked by the user")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


class FakeTelegram:
    """The fake Bot API of one bot (``token``)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.url = ""
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes, int]] = {}  # file_id -> (file_path, bytes, declared size)
        self.webhook: dict[str, Any] | None = None
        self.sent_documents: list[tuple[str, bytes, str]] = []
        self._failures: list[tuple[str | None, Failure]] = []
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._new_update = asyncio.Event()
        self._http = Served()

    # --- What tests set up ---------------------------------------------------------------------------

    def fail(self, failure: Failure, *, times: int = 1, method: str | None = "sendMessage") -> None:
        """Answer the next ``times`` calls of ``method`` (any method when None) with ``failure``."""
        self._failures.extend([(method, failure)] * times)

    def add_file(self, file_id: str, data: bytes, *, file_path: str | None = None, size: int | None = None) -> None:
        """A file getFile can resolve; ``size`` may claim more than ``data`` holds (to test size limits)."""
        self.files[file_id] = (file_path or f"documents/file_{len(self.files)}", data,
                               len(data) if size is None else size)

    def queue_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)
        self._new_update.set()

    def sent(self, method: str = "sendMessage") -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # --- The server ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(routes=[
            Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
        ])
        self.url = await self._http.start(app)

    async def stop(self) -> None:
        self._new_update.set()
        await self._http.stop()

    async def _params(self, request: Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes, str]]]:
        params: dict[str, Any] = dict(request.query_params)
        files: dict[str, tuple[str, bytes, str]] = {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: parameters must be a JSON object")
            params.update(body)
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = (value.filename or "file", await value.read(), value.content_type or "")
                else:
                    params[key] = value
        return params, files

    async def _method(self, request: Request) -> Response:
        token, method = request.path_params["token"], request.path_params["method"]
        try:
            params, files = await self._params(request)
        except (ValueError, ApiError) as exc:
            return _error(400, exc.description if isinstance(exc, ApiError) else "Bad Request: can't parse JSON")
        self.calls.append(Call(method, params, files, token))
        if token != self.token:
            return _error(401, "Unauthorized")
        for index, (only, failure) in enumerate(self._failures):
            if only is None or only == method:
                del self._failures[index]
                return _error(failure.status, failure.description, failure.retry_after)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        try:
            result = await handler(params, files)
        except ApiError as exc:
            return _error(exc.status, exc.description, exc.retry_after)
        return JSONResponse({"ok": True, "result": result})

    async def _file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        for file_path, data, _ in self.files.values():
            if file_path == request.path_params["path"]:
                return Response(data, media_type="application/octet-stream")
        return _error(404, "Not Found")

    # --- Methods ------------------------------------------------------------------------------------

    def _message(self, chat_id: Any, **fields: Any) -> dict[str, Any]:
        try:
            chat = int(chat_id)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        counter = self._message_ids.setdefault(str(chat), itertools.count(1000))
        return {"message_id": next(counter), "date": int(time.time()),
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_help_bot"},
                "chat": {"id": chat, "type": "private"}, **fields}

    @staticmethod
    def _markup(params: dict[str, Any]) -> dict[str, Any] | None:
        raw = params.get("reply_markup")
        if raw is None:
            return None
        markup = json.loads(raw) if isinstance(raw, str) else raw
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if not isinstance(rows, list):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in rows:
            for button in row:
                if not str(button.get("text", "")).strip():
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return dict(markup)

    async def _getMe(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_help_bot"}

    async def _sendMessage(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        text = str(params.get("text", "")).strip()
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._markup(params)
        return self._message(params["chat_id"], text=text, **({"reply_markup": markup} if markup else {}))

    async def _sendDocument(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if "chat_id" not in params:
            raise ApiError(400, "Bad Request: chat_id is empty")
        caption = str(params.get("caption", ""))
        if utf16_len(caption) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        upload = files.get("document")
        if upload is None and not params.get("document"):
            raise ApiError(400, "Bad Request: there is no document in the request")
        markup = self._markup(params)
        name, data, ctype = upload or ("file", b"", "")
        self.sent_documents.append((name, data, ctype))
        document = {"file_id": f"BQACAgIAAxkBAAI{len(self.sent_documents)}", "file_name": name,
                    "mime_type": ctype, "file_size": len(data)}
        return self._message(params["chat_id"], document=document, **({"caption": caption} if caption else {}),
                             **({"reply_markup": markup} if markup else {}))

    async def _getFile(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        file_path, _, size = self.files[file_id]
        if size > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id[-8:]}", "file_size": size, "file_path": file_path}

    async def _answerCallbackQuery(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    async def _setWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        self.webhook = {"url": url, "secret_token": secret} if url else None
        return True

    async def _deleteWebhook(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def _getUpdates(self, params: dict[str, Any], files: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
                                "delete the webhook first")
        offset = int(params.get("offset", 0) or 0)
        limit = min(100, max(1, int(params.get("limit", 100))))
        timeout = max(0, int(params.get("timeout", 0)))
        if offset > 0:  # confirms (and forgets) every update before it
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return self.updates[:limit]
