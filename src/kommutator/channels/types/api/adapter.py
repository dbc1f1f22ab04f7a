"""The generic API channel: an integrator's system posts customer messages (authenticated with the
channel's bearer token) and receives agent replies as signed Standard Webhooks POSTs to ``outbound_url``."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import json
import secrets
import time
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, ValidationError

from kommutator import __version__
from kommutator.channels.base import (
    Accepted,
    Capabilities,
    ChannelAdapter,
    ChannelConfig,
    Check,
    InboundItem,
    InboundMessage,
    InboundRequest,
    InboundResult,
    InboundSender,
    OutboundMessage,
    SendError,
    SendResult,
)
from kommutator.common import webhook_signing
from kommutator.common.jsonsafe import loads_json
from kommutator.common.schemas import Strict
from kommutator.crypto import new_token, same
from kommutator.errors import ProblemError


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outbound_url: HttpUrl | None = Field(default=None, description="Where agent replies are delivered")
    # Named as base.OUTBOUND_DISABLED: declared so that settings read back from the API validate again.
    outbound_disabled: str | None = Field(
        default=None, max_length=1000,
        description="Set by the server when outbound_url answered 410 Gone: replies are not sent until the "
                    "settings are saved without it")


class ApiCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inbound_token: str = Field(min_length=20, max_length=200)
    outbound_secret: str = Field(min_length=20, max_length=200)


class ApiContact(Strict):
    id: str = Field(min_length=1, max_length=255, description="The contact's id in your system")
    name: str = Field(default="", max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()-]{3,30}$")
    language: Literal["en", "ru"] | None = None
    verified: list[Literal["email", "phone"]] = Field(
        default_factory=list, max_length=2,
        description="The values your system has confirmed belong to this person (e.g. by a code sent to them). "
                    "A new identity with a verified email or phone joins the contact that already has it verified "
                    "on any channel; leave this empty if you are not sure")


class ApiInbound(Strict):
    """POST /webhooks/{channel_id} with 'Authorization: Bearer <inbound token>'."""
    id: str = Field(min_length=1, max_length=255, description="Your message id; a repeat is ignored")
    contact: ApiContact
    text: str = Field(min_length=1, max_length=20000)
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


class ApiChannel(ChannelAdapter):
    type = "api"
    title = "API"
    capabilities = Capabilities(max_text_length=20000)
    Settings = ApiSettings
    outbound_settings = ("outbound_url",)
    Credentials = ApiCredentials
    WebhookBody = ApiInbound

    def generate_credentials(self) -> dict[str, Any]:
        return {"inbound_token": new_token("kmi"),
                "outbound_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()}

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        return (f"POST customer messages as JSON to {webhook_url} with the header "
                "'Authorization: Bearer <inbound_token>'. Body: {\"id\": \"<your message id>\", "
                "\"contact\": {\"id\": \"<your contact id>\", \"name\": \"…\"}, \"text\": \"…\"}.")

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = str(channel.credentials.get("inbound_token", ""))
        if scheme.lower() != "bearer" or not expected or not same(token.strip(), expected):
            raise ProblemError(401, "invalid_channel_token",
                               "Send the channel's inbound token as 'Authorization: Bearer <token>'.")

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundItem]:
        raw = loads_json(request.body)  # 400 invalid_json / too_deep, 422 for NaN
        try:
            body = ApiInbound.model_validate(raw)
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                      for e in exc.errors()]
            raise ProblemError(422, "validation_failed", f"{errors[0]['field']}: {errors[0]['message']}",
                               errors=errors) from exc
        c = body.contact
        sender = InboundSender(external_id=c.id, name=c.name, email=str(c.email).lower() if c.email else None,
                               phone=c.phone, language=c.language, display=c.name or c.id,
                               verified_email=c.email is not None and "email" in c.verified,
                               verified_phone=c.phone is not None and "phone" in c.verified)
        return [InboundMessage(event_id=body.id, provider_message_id=body.id, sender=sender, text=body.text,
                               attributes=dict(body.attributes))]

    def acknowledge(self, channel: ChannelConfig, request: InboundRequest,
                    accepted: list[Accepted]) -> InboundResult:
        (one,) = accepted
        return InboundResult(200, {"ok": True, "duplicate": one.duplicate, "conversation_id": one.conversation_id,
                                   "message_id": one.message_id})

    async def check(self, channel: ChannelConfig, client: httpx.AsyncClient) -> list[Check]:
        """outbound_url answers (a HEAD request: nothing is delivered); none set: the channel only receives."""
        url = channel.settings.get("outbound_url")
        if not url:
            return [Check("outbound_url", True, "no outbound_url: replies are read through the API")]
        try:
            response = await client.head(str(url), follow_redirects=False)
        except httpx.TimeoutException:
            return [Check("outbound_url", False, f"{url} did not answer in time", "connect")]
        except httpx.HTTPError as exc:
            error = exc.__cause__ if isinstance(exc.__cause__, SendError) else None
            if error is not None:  # the outbound guard refused the address
                return [Check.failed("outbound_url", error)]
            return [Check("outbound_url", False, f"cannot reach {url}: {str(exc) or type(exc).__name__}",
                          "connect")]
        except SendError as exc:
            return [Check.failed("outbound_url", exc)]
        status = response.status_code
        if status in (404, 410):
            return [Check("outbound_url", False, f"{url} answered HTTP {status}: the address does not exist; "
                                                 "check outbound_url", "config")]
        if status >= 500:
            return [Check("outbound_url", False, f"{url} answered HTTP {status}", "provider")]
        return [Check("outbound_url", True, f"{url} answers (HTTP {status})")]

    async def send(self, channel: ChannelConfig, message: OutboundMessage,
                   client: httpx.AsyncClient) -> SendResult:
        """POST the reply to outbound_url, signed as Standard Webhooks; webhook-id repeats on every retry."""
        url = channel.settings.get("outbound_url")
        if not url:
            raise SendError(retryable=False, reason="the channel has no outbound_url")
        key = secret_bytes(str(channel.credentials.get("outbound_secret", "")))
        body = _outbound_body(message)
        # Wall time, not clock.now(): the receiver checks this against its own clock to refuse replays.
        timestamp = str(int(time.time()))
        headers = {"content-type": "application/json", "user-agent": f"Kommutator/{__version__}",
                   "webhook-id": message.idempotency_key, "webhook-timestamp": timestamp,
                   "webhook-signature": signature(key, message.idempotency_key, timestamp, body)}
        try:
            response, answer = await _post(client, str(url), body, headers)
        except httpx.TimeoutException:
            raise SendError(retryable=True, reason=f"{url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SendError(retryable=True, reason=f"cannot reach {url}: {str(exc) or type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(provider_message_id=_provider_id(answer))
        if status == 410:
            raise SendError(retryable=False, endpoint_gone=True,
                            reason=f"{url} answered 410 Gone: replies on this channel are stopped until an "
                                   "administrator saves its settings without outbound_disabled")
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            raise SendError(retryable=False, reason=f"{url} answered {status}, a redirect to {where}; redirects "
                                                    "are not followed: set outbound_url to the final address",
                            channel_problem="config")
        if status in _RETRYABLE_STATUSES or status >= 500:
            raise SendError(retryable=True, reason=f"{url} answered HTTP {status}{_snippet(answer)}",
                            retry_after=retry_after_seconds(response.headers.get("retry-after")))
        # 401/403: our signature or the secret is refused; 404: the URL is wrong. Others concern the message.
        problem = "auth" if status in (401, 403) else "config" if status == 404 else ""
        raise SendError(retryable=False, reason=f"{url} answered HTTP {status}{_snippet(answer)}",
                        channel_problem=problem)


# How much of an integrator's answer is read: enough for {"id": …} or an error message, no more.
_MAX_ANSWER_BYTES = 64 * 1024
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def signature(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """The Standard Webhooks signature header value (common/webhook_signing.py)."""
    return webhook_signing.signature(secret, msg_id, timestamp, body)


def secret_bytes(secret: str) -> bytes:
    """The key inside a ``whsec_<base64>`` secret (padding optional, as the reference libraries accept)."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise SendError(retryable=False, reason="the channel's outbound_secret is not a whsec_<base64> secret of "
                                                "at least 16 bytes; set a new one in the channel's credentials")
    return key


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After: delay seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - time.time())


def _provider_id(answer: bytes) -> str | None:
    try:
        data = loads_json(answer)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if 0 < len(text) <= 255 else None


def _snippet(answer: bytes) -> str:
    text = " ".join(answer[:300].decode("utf-8", "replace").split())
    return f": {text[:200]}" if text else ""


def _outbound_body(message: OutboundMessage) -> bytes:
    created = message.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    body = {"type": "message.created", "message": {
        "id": message.id, "conversation_id": message.conversation_id, "contact": {"id": message.to},
        "text": message.text, "created_at": created,
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "sha256": a.sha256, "url": a.url} for a in message.attachments]}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def _post(client: httpx.AsyncClient, url: str, body: bytes,
                headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    async with client.stream("POST", url, content=body, headers=headers, follow_redirects=False) as response:
        answer = b""
        async for chunk in response.aiter_bytes():
            answer += chunk
            if len(answer) >= _MAX_ANSWER_BYTES:
                break
    return response, answer[:_MAX_ANSWER_BYTES]
