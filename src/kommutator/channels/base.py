"""The channel adapter interface and the normalised events adapters produce.

A channel type is one package under ``kommutator/channels/types/`` that defines a subclass of
``ChannelAdapter`` and decorates it with ``@register``. The core never switches on the type.
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

# The key in a channel's settings that stops outbound delivery, holding the reason (set by the outbox
# worker when the endpoint answered 410 Gone; an administrator saving new settings clears it).
OUTBOUND_DISABLED = "outbound_disabled"


@dataclass(frozen=True)
class Capabilities:
    """What a channel can carry; routing, the bot and the outbox read these instead of the type."""

    max_text_length: int = 4096
    buttons: bool = False
    max_buttons: int = 0
    attachments: bool = False
    rich_text: bool = False
    # Free-form replies allowed only this long after the customer's last message (WhatsApp: 24 h).
    reply_window: dt.timedelta | None = None
    messages_per_second: float | None = None
    messages_per_second_per_chat: float | None = None


@dataclass(frozen=True)
class InboundRequest:
    """An HTTP request from a provider, as the adapter needs it (raw body for signatures)."""

    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class InboundSender:
    external_id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    display: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, normalised; ``event_id`` is the provider's id used to drop redeliveries."""

    event_id: str
    sender: InboundSender
    text: str
    provider_message_id: str | None = None
    sent_at: dt.datetime | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelConfig:
    """A channel row with its credentials decrypted, handed to the adapter."""

    id: int
    type: str
    name: str
    settings: dict[str, Any]
    credentials: dict[str, Any]
    enabled: bool
    team_id: int | None = None


@dataclass(frozen=True)
class Accepted:
    """What became of one inbound event once committed."""

    event_id: str
    duplicate: bool
    conversation_id: int | None
    message_id: int | None


@dataclass(frozen=True)
class OutboundAttachment:
    """A file on an outbound message: metadata and where an API client can download it."""

    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str


@dataclass(frozen=True)
class OutboundMessage:
    """One of our messages to deliver; ``idempotency_key`` is the same on every attempt."""

    id: int
    idempotency_key: str
    conversation_id: int
    to: str  # the recipient's external id on the channel
    text: str
    kind: str
    created_at: dt.datetime
    attachments: tuple[OutboundAttachment, ...] = ()


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message; its id for the message, when it gives one."""

    provider_message_id: str | None = None


class SendError(Exception):
    """Delivery failed. ``retryable`` asks the outbox to try again later (not before ``retry_after``
    seconds); ``endpoint_gone`` says the channel's outbound endpoint no longer exists (HTTP 410), so the
    outbox stops sending on the channel until an administrator changes its settings."""

    def __init__(self, *, retryable: bool, reason: str, retry_after: float | None = None,
                 endpoint_gone: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.reason = reason
        self.retry_after = retry_after
        self.endpoint_gone = endpoint_gone


@dataclass(frozen=True)
class InboundResult:
    """What the adapter answers the provider with, once the events are committed."""

    status: int = 200
    body: Any = None
    media_type: str = "application/json"


class ChannelAdapter:
    """Subclass per channel type; override what the type supports."""

    type: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Pydantic models that validate a channel's settings and credentials at creation and update.
    Settings: ClassVar[builtins.type[BaseModel]]
    Credentials: ClassVar[builtins.type[BaseModel]]

    def generate_credentials(self) -> dict[str, Any]:
        """Secrets the server creates for a new channel (e.g. an inbound token), shown once."""
        return {}

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        """What the administrator must do at the provider's side."""
        return f"Point the provider's webhook at {webhook_url}."

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        """Raise ProblemError (401/403) unless the request really comes from the provider."""
        raise NotImplementedError

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundMessage]:
        """Turn a verified request into normalised events; raise ProblemError(400/422) on bad input."""
        raise NotImplementedError

    def acknowledge(self, channel: ChannelConfig, request: InboundRequest,
                    accepted: list[Accepted]) -> InboundResult:
        """The answer to the provider, given only after the events were committed."""
        return InboundResult(200, {"ok": True})

    async def send(self, channel: ChannelConfig, message: OutboundMessage,
                   client: httpx.AsyncClient) -> SendResult:
        """Deliver one message through ``client`` (the outbox's, guarded against private targets);
        raise SendError on failure. Called outside any transaction, possibly more than once per message."""
        raise SendError(retryable=False, reason=f"channel type {self.type!r} cannot send")
