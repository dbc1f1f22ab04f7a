"""Calls to the Telegram Bot API (``<api_base_url>/bot<token>/<method>``) and its error shapes.

Every answer is ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code": …, "description": …,
"parameters": {"retry_after": …}}``. Errors become ``BotApiError``; ``send_error`` turns one into the
outbox's ``SendError`` with a sentence an agent can act on. The token is part of every URL, so it is
scrubbed from anything this module puts into an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from kommutator.channels.base import ChannelConfig, SendError
from kommutator.common.jsonsafe import loads_json

DEFAULT_API_BASE_URL = "https://api.telegram.org"
# Bots may download files of at most 20 MB (getFile) and upload documents of at most 50 MB.
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# An answer larger than this is not a Bot API answer (100 updates of getUpdates stay far below).
_MAX_ANSWER_BYTES = 16 * 1024 * 1024

# What an agent should know about the refusals they will meet; matched on Telegram's description.
_HINTS = (
    ("bot was blocked by the user", "the customer blocked the bot; they get replies again once they unblock it"),
    ("user is deactivated", "the customer's Telegram account was deleted"),
    ("chat not found", "the bot has no chat with this customer (they never wrote to it, or it is another bot)"),
    ("bot can't initiate conversation", "the customer must write to the bot first"),
    ("message is too long", "the text is longer than Telegram allows"),
    ("BUTTON_DATA_INVALID", "a button id is empty or longer than 64 bytes"),
    ("file is too big", "bots can download files of at most 20 MB"),
)


@dataclass(eq=False)
class BotApiError(Exception):
    """The Bot API refused a call (``status`` is its error_code, 0 when it could not be reached)."""

    method: str
    status: int
    description: str
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.reason

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500

    @property
    def reason(self) -> str:
        if self.status == 0:
            return f"Telegram could not be reached ({self.method}): {self.description}"
        if self.status == 401:
            return (f"Telegram rejected the bot token ({self.method}: 401 {self.description}); set the channel's "
                    "bot_token to the token @BotFather gives for this bot")
        if self.status == 429:
            wait = f"; retry after {self.retry_after:g} s" if self.retry_after is not None else ""
            return f"Telegram asks to slow down ({self.method}: {self.description}{wait})"
        hint = next((h for needle, h in _HINTS if needle.lower() in self.description.lower()), "")
        return f"Telegram refused {self.method} ({self.status}: {self.description})" + (f": {hint}" if hint else "")


def send_error(exc: BotApiError) -> SendError:
    """The outbox's view of a refused call: 429, 5xx and network errors are tried again later."""
    return SendError(retryable=exc.retryable, reason=exc.reason, retry_after=exc.retry_after,
                     channel_problem="auth" if exc.status == 401 else "")


class BotApi:
    """The Bot API of one channel's bot, through a given HTTP client."""

    def __init__(self, channel: ChannelConfig, client: httpx.AsyncClient) -> None:
        base = str(channel.settings.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        self._token = str(channel.credentials.get("bot_token", ""))
        self._base = base
        self._client = client

    def method_url(self, method: str) -> str:
        return f"{self._base}/bot{self._token}/{method}"

    def file_url(self, file_path: str) -> str:
        return f"{self._base}/file/bot{self._token}/{file_path.lstrip('/')}"

    def scrub(self, text: str) -> str:
        """Text without the bot token (exception messages may quote the URL)."""
        return text.replace(self._token, "<bot_token>") if self._token else text

    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   files: dict[str, tuple[str, bytes, str]] | None = None, request_timeout: float | None = None) -> Any:
        """Call ``method``; its ``result``, or BotApiError. Files go as multipart/form-data, the rest as JSON."""
        if not self._token:
            raise BotApiError(method, 401, "the channel has no bot_token")
        kwargs: dict[str, Any] = {}
        if files:
            kwargs["data"] = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                              for k, v in (params or {}).items()}
            kwargs["files"] = files
        else:
            kwargs["json"] = params or {}
        if request_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(request_timeout, connect=min(request_timeout, 5.0))
        try:
            async with self._client.stream("POST", self.method_url(method), **kwargs) as response:
                body = await _read_capped(response, _MAX_ANSWER_BYTES)
        except httpx.TimeoutException:
            raise BotApiError(method, 0, "no answer in time") from None
        except httpx.HTTPError as exc:
            raise BotApiError(method, 0, self.scrub(str(exc) or type(exc).__name__)) from None
        return _result(method, response, body)

    async def download(self, file_path: str, *, max_bytes: int) -> bytes:
        """GET a file from ``/file/bot<token>/<file_path>``; BotApiError when refused or larger than allowed."""
        try:
            async with self._client.stream("GET", self.file_url(file_path)) as response:
                if response.status_code != 200:
                    body = await _read_capped(response, 64 * 1024)
                    _result("file download", response, body)  # raises with Telegram's description
                    raise BotApiError("file download", response.status_code, "unexpected answer")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise BotApiError("file download", 400, f"file is too big ({int(declared)} bytes)")
                data = await _read_capped(response, max_bytes + 1)
        except httpx.TimeoutException:
            raise BotApiError("file download", 0, "no answer in time") from None
        except httpx.HTTPError as exc:
            raise BotApiError("file download", 0, self.scrub(str(exc) or type(exc).__name__)) from None
        if len(data) > max_bytes:
            raise BotApiError("file download", 400, f"file is too big (more than {max_bytes} bytes)")
        return data


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data)


def _result(method: str, response: httpx.Response, body: bytes) -> Any:
    """The ``result`` of a Bot API answer, or BotApiError with Telegram's code and description."""
    try:
        answer = loads_json(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        snippet = " ".join(body[:200].decode("utf-8", "replace").split()) or "an empty body"
        status = response.status_code if response.status_code >= 400 else 502
        raise BotApiError(method, status, f"HTTP {response.status_code} with {snippet}")
    if answer.get("ok") is True and 200 <= response.status_code < 300:
        return answer.get("result")
    code = answer.get("error_code")
    status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else (
        response.status_code if response.status_code >= 400 else 502)
    description = str(answer.get("description") or f"HTTP {response.status_code}")[:500]
    parameters = answer.get("parameters") if isinstance(answer.get("parameters"), dict) else {}
    retry_after = _seconds(parameters.get("retry_after")) if parameters else None
    if retry_after is None and status == 429:
        retry_after = _seconds(response.headers.get("retry-after"))
    raise BotApiError(method, status, description, retry_after)


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and 0 <= value < 10**7:
        return float(value)
    if isinstance(value, str) and value.strip().isdigit():
        return float(value.strip())
    return None
