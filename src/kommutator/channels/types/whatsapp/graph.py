"""Calls to the Graph API (send a message, upload our files, download a customer's media) and what its errors
mean.

Graph errors look like ``{"error": {"message", "type", "code", "error_data": {"details"}, "fbtrace_id"}}``;
Meta asks clients to act on ``code`` (and ``details``), not on the HTTP status or the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from kommutator.channels.base import SendError
from kommutator.channels.types.whatsapp.composing import WINDOW_CLOSED
from kommutator.common.jsonsafe import loads_json

MAX_ANSWER_BYTES = 64 * 1024
MAX_MEDIA_BYTES = 100 * 1024 * 1024  # WhatsApp's largest file (documents)
UPLOAD_TIMEOUT = 120.0

RE_ENGAGEMENT = 131047
INVALID_TOKEN = 190
# Throughput and pair limits (130429, 131056), WABA and app rate limits (80007, 4, 17, 32, 613).
RATE_LIMITED = frozenset({4, 17, 32, 613, 80007, 130429, 131056})
# Meta's own trouble: "unknown error", "temporarily unavailable", "something went wrong", "service unavailable".
TRANSIENT = frozenset({1, 2, 131000, 131016, 133004})
PERMISSION = frozenset({3, 10, *range(200, 300)})
TEMPLATE = frozenset({132000, 132001, 132005, 132007, 132012, 132015, 132016, 132018, 132068, 132069})
UNDELIVERABLE = frozenset({131026, 131049, 131050})
RETRYABLE_STATUSES = frozenset({408, 425, 429})


class WindowClosed(SendError):
    """WhatsApp says the 24-hour window is closed (error 131047): only a template may go now."""

    def __init__(self) -> None:
        super().__init__(retryable=False, reason=WINDOW_CLOSED)


@dataclass(frozen=True)
class Graph:
    """Where and as whom to call the Graph API for one channel."""

    base_url: str
    version: str
    phone_number_id: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}

    def url(self, *path: str) -> str:
        return "/".join([self.base_url.rstrip("/"), self.version, *path])


@dataclass(frozen=True)
class GraphError:
    code: int | None
    message: str
    details: str

    @property
    def text(self) -> str:
        said = self.details or self.message
        return f"{said} (error {self.code})" if self.code is not None else said


def read_error(answer: bytes) -> GraphError | None:
    try:
        data = loads_json(answer)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    details = error.get("error_data", {}).get("details") if isinstance(error.get("error_data"), dict) else None
    return GraphError(code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                      message=str(error.get("message") or "no message").strip(),
                      details=str(details or "").strip())


def retry_after(response: httpx.Response) -> float | None:
    """The provider's wait: Retry-After seconds, or Graph's estimated_time_to_regain_access (minutes)."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    longest = 0.0
    for header in ("x-business-use-case-usage", "x-app-usage"):
        try:
            usage = loads_json(response.headers.get(header, "") or "{}")
        except ValueError:
            continue
        entries = [e for v in usage.values() if isinstance(v, list) for e in v] if isinstance(usage, dict) else []
        for entry in entries:
            minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
            if isinstance(minutes, int | float) and not isinstance(minutes, bool):
                longest = max(longest, float(minutes) * 60)
    return longest or None


def send_error(response: httpx.Response, answer: bytes, *, template_name: str | None = None,
               subject: str = "the message") -> SendError:
    """What a refusal of a send (or of an upload: ``subject`` names the file) means for the agent and the outbox."""
    status = response.status_code
    error = read_error(answer)
    wait = retry_after(response)
    if error is None or error.code is None:
        snippet = " ".join(answer[:300].decode("utf-8", "replace").split())[:200]
        said = f"WhatsApp answered HTTP {status}" + (f": {snippet}" if snippet else "")
        return SendError(retryable=status >= 500 or status in RETRYABLE_STATUSES, reason=said, retry_after=wait)
    code = error.code
    if code in RATE_LIMITED or status == 429:
        return SendError(retryable=True, retry_after=wait,
                         reason=f"WhatsApp rate limit reached, {subject} will be sent later: {error.text}")
    if code in TRANSIENT or status >= 500:
        return SendError(retryable=True, retry_after=wait, reason=f"WhatsApp is having trouble: {error.text}")
    if code == RE_ENGAGEMENT:
        return WindowClosed()
    if code == INVALID_TOKEN:
        return SendError(retryable=False, reason=(
            "WhatsApp refused the channel's credentials: the access token is invalid or expired; an administrator "
            f"must set a new access_token in the channel's credentials ({error.text})"), channel_problem="auth")
    if code in PERMISSION:
        return SendError(retryable=False, reason=(
            "The channel's access token may not send messages from this number; an administrator must give it "
            f"the whatsapp_business_messaging permission ({error.text})"), channel_problem="auth")
    if code in TEMPLATE:
        named = f" {template_name!r}" if template_name else ""
        return SendError(retryable=False, reason=(
            f"WhatsApp refused the template{named}: {error.text}; check template_name and template_language in "
            "the channel settings against the templates approved in WhatsApp Manager"))
    if code in UNDELIVERABLE:
        return SendError(retryable=False, reason=(
            "WhatsApp cannot deliver to this customer (the number may not use WhatsApp, may have blocked the "
            f"business or may need to update the app): {error.text}"))
    return SendError(retryable=False, reason=f"WhatsApp refused {subject}: {error.text}")


def network_error(exc: Exception, what: str) -> SendError:
    if isinstance(exc, httpx.TimeoutException):
        return SendError(retryable=True, reason=f"WhatsApp did not answer in time while {what}")
    return SendError(retryable=True, reason=f"Cannot reach WhatsApp while {what}: {str(exc) or type(exc).__name__}")


async def _read(response: httpx.Response, limit: int) -> bytes:
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            break
    return data


async def phone_number(client: httpx.AsyncClient, graph: Graph) -> str:
    """The business number the token may use (GET /{phone_number_id}), as WhatsApp shows it; SendError if not."""
    try:
        async with client.stream("GET", graph.url(graph.phone_number_id),
                                 params={"fields": "display_phone_number,verified_name"}, headers=graph.headers,
                                 follow_redirects=False) as response:
            answer = await _read(response, MAX_ANSWER_BYTES)
    except httpx.HTTPError as exc:
        raise network_error(exc, "checking the phone number") from None
    if response.status_code != 200:
        error = send_error(response, answer, subject=f"the phone number id {graph.phone_number_id}")
        if not error.retryable and not error.channel_problem:
            error.channel_problem = "config"  # an unknown phone_number_id
        raise error
    try:
        data = loads_json(answer)
    except ValueError:
        data = {}
    shown = data.get("display_phone_number") if isinstance(data, dict) else None
    name = data.get("verified_name") if isinstance(data, dict) else None
    return " ".join(str(x) for x in (shown, f"({name})" if name else "") if x) or graph.phone_number_id


async def post_message(client: httpx.AsyncClient, graph: Graph, to: str, part: dict[str, Any], *,
                       template_name: str | None = None) -> str | None:
    """Send one message body; the wamid WhatsApp gave it."""
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **part}
    try:
        async with client.stream("POST", graph.url(graph.phone_number_id, "messages"), json=body,
                                 headers=graph.headers, follow_redirects=False) as response:
            answer = await _read(response, MAX_ANSWER_BYTES)
    except httpx.HTTPError as exc:
        raise network_error(exc, "sending the message") from None
    if response.status_code != 200:
        raise send_error(response, answer, template_name=template_name)
    try:
        data = loads_json(answer)
        wamid = data["messages"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return wamid if isinstance(wamid, str) and 0 < len(wamid) <= 255 else None


async def upload_media(client: httpx.AsyncClient, graph: Graph, *, data: bytes, filename: str,
                       content_type: str) -> str:
    """Upload one file to the number's media store (multipart ``file``, ``type``, ``messaging_product``);
    the media id a message then refers to."""
    subject = f"the file {filename!r}"
    try:
        async with client.stream("POST", graph.url(graph.phone_number_id, "media"), headers=graph.headers,
                                 data={"messaging_product": "whatsapp", "type": content_type},
                                 files={"file": (filename, data, content_type)}, timeout=UPLOAD_TIMEOUT,
                                 follow_redirects=False) as response:
            answer = await _read(response, MAX_ANSWER_BYTES)
    except httpx.HTTPError as exc:
        raise network_error(exc, f"uploading {subject}") from None
    if response.status_code != 200:
        raise send_error(response, answer, subject=subject)
    try:
        media_id = loads_json(answer)["id"]
    except (ValueError, KeyError, TypeError):
        media_id = None
    if not isinstance(media_id, str) or not 0 < len(media_id) <= 255:
        raise SendError(retryable=True, reason=f"WhatsApp accepted {subject} but gave no media id; trying again")
    return media_id


def _media_error(response: httpx.Response, answer: bytes, media_id: str) -> SendError:
    error = read_error(answer)
    status = response.status_code
    said = error.text if error is not None else f"HTTP {status}"
    if status >= 500 or status in RETRYABLE_STATUSES or (error is not None and error.code in RATE_LIMITED | TRANSIENT):
        return SendError(retryable=True, reason=f"WhatsApp could not hand out media {media_id} yet: {said}",
                         retry_after=retry_after(response))
    return SendError(retryable=False, reason=f"WhatsApp refused to hand out media {media_id}: {said}")


def _same_origin(a: str, b: str) -> bool:
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)


async def fetch_media(client: httpx.AsyncClient, graph: Graph, media_id: str) -> bytes:
    """Ask Graph for the media's short-lived URL, then download it with the same token."""
    try:
        response = await client.get(graph.url(media_id), params={"phone_number_id": graph.phone_number_id},
                                    headers=graph.headers, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise network_error(exc, f"looking up media {media_id}") from None
    if response.status_code != 200:
        raise _media_error(response, response.content[:MAX_ANSWER_BYTES], media_id)
    try:
        meta = loads_json(response.content)
    except ValueError:
        meta = None
    url = meta.get("url") if isinstance(meta, dict) else None
    if not isinstance(url, str) or not url:
        raise SendError(retryable=False, reason=f"WhatsApp gave no download address for media {media_id}")
    size = meta.get("file_size") if isinstance(meta, dict) else None
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, int) and size > MAX_MEDIA_BYTES:
        raise SendError(retryable=False, reason=f"media {media_id} is {size} bytes, more than WhatsApp allows")
    # The token goes only over TLS, or to the API's own origin (a test double or a proxy the admin set).
    if urlsplit(url).scheme != "https" and not _same_origin(url, graph.base_url):
        raise SendError(retryable=False, reason=f"WhatsApp gave a download address that is not https: {url}")
    try:
        async with client.stream("GET", url, headers=graph.headers, follow_redirects=False) as download:
            data = await _read(download, MAX_MEDIA_BYTES)
            if download.status_code != 200:
                raise _media_error(download, data[:MAX_ANSWER_BYTES], media_id)
    except httpx.HTTPError as exc:
        raise network_error(exc, f"downloading media {media_id}") from None
    if len(data) > MAX_MEDIA_BYTES:
        raise SendError(retryable=False, reason=f"media {media_id} is larger than WhatsApp allows")
    return data
