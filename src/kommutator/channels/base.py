"""The channel adapter interface and the normalised events adapters produce.

A channel type is one package under ``kommutator/channels/types/`` that defines a subclass of
``ChannelAdapter`` and decorates it with ``@register``. The core never switches on the type.
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter
from pydantic import BaseModel

# The normalised inbound items belong to the core (ingest/types.py); adapters produce them.
from kommutator.ingest.types import STATUS_ORDER as STATUS_ORDER
from kommutator.ingest.types import ChannelConfig as ChannelConfig
from kommutator.ingest.types import InboundEdit as InboundEdit
from kommutator.ingest.types import InboundFile as InboundFile
from kommutator.ingest.types import InboundItem as InboundItem
from kommutator.ingest.types import InboundMessage as InboundMessage
from kommutator.ingest.types import InboundSender as InboundSender
from kommutator.ingest.types import InboundStatus as InboundStatus
from kommutator.ingest.types import SendError as SendError

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
    # Replies need the conversation's earlier provider ids (OutboundMessage.thread), e.g. email threading.
    threaded: bool = False


@dataclass(frozen=True)
class InboundRequest:
    """An HTTP request from a provider, as the adapter needs it (raw body for signatures)."""

    method: str
    url: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes


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
    url: str  # our API's download URL (needs an API token): for integrators
    path: Path | None = None  # the stored file on this server's disk: adapters upload its bytes from here


@dataclass(frozen=True)
class Button:
    """A choice offered to the customer; a press comes back as ``InboundMessage(button=id)``.
    Adapters without buttons never see these: the core turns them into numbered lines in the text."""

    id: str  # at most 64 bytes (Telegram's callback_data limit)
    label: str


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
    buttons: tuple[Button, ...] = ()
    language: str | None = None  # the contact's language, for templates and fixed texts
    # When the customer last wrote on this channel (for reply windows such as WhatsApp's 24 hours).
    last_customer_message_at: dt.datetime | None = None
    # Where threading needs it (email): the provider ids of the conversation's earlier messages, oldest first,
    # and the subject of the conversation.
    thread: tuple[str, ...] = ()
    subject: str = ""
    # A provider template chosen for this message (a first message outside WhatsApp's window): see TemplateUse.
    template: TemplateUse | None = None


@dataclass(frozen=True)
class TemplateUse:
    """An approved provider template (WhatsApp) to send, with its parameters in the provider's order."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()
    approved: bool = True


@dataclass(frozen=True)
class Reach:
    """What the core knows of one contact for a message that starts a conversation on one channel."""

    chat_id: str | None  # their id on this channel type, from an identity (they wrote to us there)
    phone: str | None  # the contact's phone (E.164), when known
    email: str | None
    last_inbound_at: dt.datetime | None  # their latest message on this channel, if any


@dataclass(frozen=True)
class Draft:
    """The first message: its text (a template's rendered body when one is used), subject, template."""

    text: str
    subject: str = ""
    template: TemplateUse | None = None


class Refusal(Exception):
    """The channel's rules forbid this first message: a machine code and the sentence in English and Russian."""

    def __init__(self, code: str, en: str, ru: str, **extra: Any) -> None:
        super().__init__(en)
        self.code, self.en, self.ru, self.extra = code, en, ru, extra


NEVER_WROTE = ("The customer has never written to this {what}; {provider} only lets it write to people who wrote "
               "first. Choose another channel.",
               "Клиент ни разу не писал в {what_ru}; {provider} разрешает писать только тем, кто написал первым. "
               "Выберите другой канал.")


def needs_chat(reach: Reach, channel_type: str, what: tuple[str, str], provider: str) -> str:
    """The recipient's chat id, or the refusal for people who never wrote (Telegram bots, VK communities)."""
    if reach.chat_id:
        return reach.chat_id
    en, ru = NEVER_WROTE
    raise Refusal(f"{channel_type}_never_wrote", en.format(what=what[0], provider=provider),
                  ru.format(what_ru=what[1], provider=provider))


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message; its id for the message, when it gives one."""

    provider_message_id: str | None = None


# Why a channel cannot work, as ``ChannelProblem.code``: the first four fail the channel at once, the
# others degrade it until they repeat (see channels/health.py).
PROBLEM_CODES = ("auth", "tls", "config", "refused", "connect", "provider")


@dataclass(frozen=True)
class ChannelProblem:
    """What stops a channel from working: a machine code (``PROBLEM_CODES``) and a sentence saying what to fix."""

    code: str
    detail: str


@dataclass(frozen=True)
class Check:
    """One step of a channel's connection test (``ChannelAdapter.check``): e.g. "getMe", "IMAP login"."""

    name: str
    ok: bool
    detail: str = ""
    code: str = ""  # a PROBLEM_CODES value when not ok

    @classmethod
    def failed(cls, name: str, error: SendError) -> Check:
        """A step that failed with the error the adapter's sending would have given."""
        code = error.channel_problem or ("connect" if error.retryable else "provider")
        return cls(name, False, error.reason, code)


@dataclass(frozen=True)
class InboundResult:
    """What the adapter answers the provider with, once the events are committed."""

    status: int = 200
    body: Any = None
    media_type: str = "application/json"


@dataclass(frozen=True)
class OutboundTarget:
    """A server a channel's settings make it connect to, and the setting that names it."""

    setting: str
    host: str
    port: int


class ChannelHost(Protocol):
    """What the server offers an adapter's ``run``."""

    client: httpx.AsyncClient  # guarded against private targets unless allowed in the settings

    async def channels(self, type: str) -> list[ChannelConfig]:
        """The enabled channels of a type, credentials decrypted."""
        ...

    async def ingest(self, channel: ChannelConfig, items: list[InboundItem], raw: bytes) -> list[Accepted]:
        """Commit items as a webhook would; raises if they could not be committed (retry later)."""
        ...

    async def get_state(self, channel_id: int, key: str) -> str | None:
        """A small durable value per channel, e.g. a polling offset."""
        ...

    async def set_state(self, channel_id: int, key: str, value: str) -> None: ...

    async def report(self, channel_id: int, problem: ChannelProblem | None) -> None:
        """The outcome of one round of the channel's work (a poll): None when it worked; cheap to call often."""
        ...


class ChannelAdapter:
    """Subclass per channel type; override what the type supports."""

    type: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    # False for types that receive by other means (email: SMTP, IMAP): the API then shows no webhook URL.
    receives_webhooks: ClassVar[bool] = True
    # Pydantic models that validate a channel's settings and credentials at creation and update.
    Settings: ClassVar[builtins.type[BaseModel]]
    Credentials: ClassVar[builtins.type[BaseModel]]
    # The body a provider POSTs to /webhooks/{id}, for the OpenAPI document: its pydantic model when the type
    # parses it with one, and the media type it comes as (None: the type takes no webhook bodies).
    WebhookBody: ClassVar[builtins.type[BaseModel] | None] = None
    webhook_media_type: ClassVar[str | None] = "application/json"

    # Settings that name a server the channel connects to (URLs or host names), checked by the outbound guard
    # when the channel is saved; ``outbound_targets`` reads them.
    outbound_settings: ClassVar[tuple[str, ...]] = ()

    def outbound_targets(self, settings: dict[str, Any]) -> list[OutboundTarget]:
        """The servers valid settings make the channel connect to: each ``outbound_settings`` URL."""
        targets = []
        for name in self.outbound_settings:
            value = settings.get(name)
            if value:
                url = urlsplit(str(value))
                if url.hostname:
                    port = url.port or (443 if url.scheme == "https" else 80)
                    targets.append(OutboundTarget(setting=name, host=url.hostname, port=port))
        return targets

    def generate_credentials(self) -> dict[str, Any]:
        """Secrets the server creates for a new channel (e.g. an inbound token), shown once."""
        return {}

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        """What the administrator must do at the provider's side."""
        return f"Point the provider's webhook at {webhook_url}."

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        """Raise ProblemError (401/403) unless the request really comes from the provider."""
        raise NotImplementedError

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundItem]:
        """Turn a verified request into normalised events; raise ProblemError(400/422) on bad input.
        Events the product does not use (e.g. typing notices) are left out, and still acknowledged."""
        raise NotImplementedError

    async def fetch_file(self, channel: ChannelConfig, ref: str, client: httpx.AsyncClient) -> bytes:
        """Download a file an inbound message refers to (``InboundFile.ref``); raise SendError on failure."""
        raise SendError(retryable=False, reason=f"channel type {self.type!r} has no files to fetch")

    def routers(self) -> list[APIRouter]:
        """Public routes of the type beyond /webhooks (the web chat's visitor endpoints), mounted at the root."""
        return []

    async def run(self, host: ChannelHost) -> None:
        """Long-running work of the type (long polling, an SMTP listener, an IMAP poller), started with the
        server and cancelled at shutdown; the default has none. Items it receives go through
        ``host.ingest`` exactly like a webhook's."""
        return None

    async def check(self, channel: ChannelConfig, client: httpx.AsyncClient) -> list[Check]:
        """Test the channel's connection to its provider (log in, check the token, reach the URL) through
        ``client`` (guarded), without sending anything to customers; one ``Check`` per step."""
        return [Check("connection", True, "nothing to connect to: this type only receives")]

    def acknowledge(self, channel: ChannelConfig, request: InboundRequest,
                    accepted: list[Accepted]) -> InboundResult:
        """The answer to the provider, given only after the events were committed."""
        return InboundResult(200, {"ok": True})

    def first_message(self, channel: ChannelConfig, reach: Reach, draft: Draft, at: dt.datetime) -> str:
        """The recipient's id for a message that starts a conversation (an agent's or a notification), or raise
        ``Refusal`` saying which of the channel's rules forbids it. The default reaches only people who wrote to
        the channel before."""
        return needs_chat(reach, self.type, ("channel", "канал"), self.title)

    def measure(self, draft: Draft) -> dict[str, Any]:
        """Facts about how the provider will carry the text, shown before sending (SMS: encoding, segments)."""
        return {}

    def calls(self, message: OutboundMessage) -> int:
        """How many provider calls ``send`` makes for the message (a long text split in parts, files): the outbox
        books that many pacing slots, so split messages stay within the provider's rate too."""
        return 1

    async def send(self, channel: ChannelConfig, message: OutboundMessage,
                   client: httpx.AsyncClient) -> SendResult:
        """Deliver one message through ``client`` (the outbox's, guarded against private targets);
        raise SendError on failure. Called outside any transaction, possibly more than once per message."""
        raise SendError(retryable=False, reason=f"channel type {self.type!r} cannot send")
