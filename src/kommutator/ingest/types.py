"""What a channel adapter hands the core: normalised inbound items (a customer's message with its sender and
files, a delivery status, an edit), the channel as the adapter sees it, and the error a provider call raises.

They live in the core so that ingest and conversations need nothing from channels/ (channels/base.py re-exports
them for adapters).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InboundSender:
    """Who wrote. ``verified_email`` / ``verified_phone`` say the channel vouches that ``email`` / ``phone``
    belong to this sender (a WhatsApp or SMS number, an email From address the provider accepted, a Telegram
    contact the user shared as their own); only vouched values link a new identity to an existing contact."""

    external_id: str
    name: str = ""
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    display: str = ""
    verified_email: bool = False
    verified_phone: bool = False


@dataclass(frozen=True)
class InboundFile:
    """A file on a customer's message: its bytes (``data``, e.g. a MIME part) or a provider reference
    (``ref``, e.g. a Telegram file_id) that the core resolves with ``ChannelAdapter.fetch_file`` before
    the message is committed, so a failed download makes the provider retry instead of losing the file."""

    filename: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None
    ref: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A customer's message, normalised; ``event_id`` is the provider's id used to drop redeliveries.

    A button press is a message whose ``text`` is the button's label and ``button`` its id (the id we
    gave it in ``OutboundMessage.buttons``)."""

    event_id: str
    sender: InboundSender
    text: str
    provider_message_id: str | None = None
    sent_at: dt.datetime | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    files: tuple[InboundFile, ...] = ()
    button: str | None = None
    # Threading (email): provider ids of earlier messages this one answers (In-Reply-To, References), parent
    # last. The message joins the conversation of the newest of them on this channel, if it is the same
    # contact's, reopening it when resolved.
    thread_ids: tuple[str, ...] = ()
    # A conversation id the customer quoted (a "[#123]" token in a subject): tried after thread_ids, same rule.
    conversation_hint: int | None = None
    # The subject of a conversation this message opens; empty: the start of the text.
    subject: str = ""


# Delivery statuses in the order they may move; "failed" is final and only replaces queued or sent.
STATUS_ORDER = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}


@dataclass(frozen=True)
class InboundStatus:
    """The provider reports what became of one of our messages (``sent``, ``delivered``, ``read``,
    ``failed`` with a ``reason``). Statuses only move forward; repeats and late arrivals are no-ops."""

    event_id: str
    provider_message_id: str
    status: str
    reason: str = ""
    at: dt.datetime | None = None


@dataclass(frozen=True)
class InboundEdit:
    """The customer edited a message they sent earlier; the original text is kept in the message payload."""

    event_id: str
    provider_message_id: str
    text: str


InboundItem = InboundMessage | InboundStatus | InboundEdit


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
    queue_id: int | None = None
    # Where providers reach this channel (public base URL + /webhooks/{id}): signatures over the URL,
    # status callback addresses.
    webhook_url: str = ""



class SendError(Exception):
    """Delivery failed. ``retryable`` asks the outbox to try again later (not before ``retry_after``
    seconds); ``endpoint_gone`` says the channel's outbound endpoint no longer exists (HTTP 410), so the
    outbox stops sending on the channel until an administrator changes its settings."""

    def __init__(self, *, retryable: bool, reason: str, retry_after: float | None = None,
                 endpoint_gone: bool = False, channel_problem: str = "") -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.reason = reason
        self.retry_after = retry_after
        self.endpoint_gone = endpoint_gone
        # A PROBLEM_CODES value (channels/base.py) when the channel itself cannot send (its token or login
        # refused, its URL gone), not just this message: the channel's health records it (channels/health.py).
        self.channel_problem = channel_problem
