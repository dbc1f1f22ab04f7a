"""Typed domain events and the bus they travel on.

Actions record events on their transaction (``tx.publish``); the database publishes them after the
commit, so no listener ever sees a change that was rolled back. Listeners (bot, routing, realtime,
SLA monitor, reporting) subscribe here; nothing in the core keeps a list of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base class: ``kind`` names the event on the wire (webhooks, sockets)."""

    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class ConversationEvent(Event):
    """An event about one conversation; carries what permission checks need."""

    conversation_id: int
    team_id: int | None
    assignee_id: int | None


@dataclass(frozen=True)
class MessageCreated(ConversationEvent):
    kind: ClassVar[str] = "message.created"
    message_id: int = 0
    direction: str = "in"
    sender_type: str = "contact"
    message_kind: str = "text"
    channel_id: int | None = None
    # The conversation's status once the message is in, where the writer knows it ("" when it does not): lets
    # listeners skip messages that concern them only in some statuses (routing: queued ones).
    conversation_status: str = ""


@dataclass(frozen=True)
class MessageStatusChanged(ConversationEvent):
    """An outbound message's delivery status moved (queued → sent or failed, later delivered, read)."""

    kind: ClassVar[str] = "message.status_changed"
    message_id: int = 0
    status: str = ""
    reason: str = ""
    channel_id: int | None = None


@dataclass(frozen=True)
class MessageEdited(ConversationEvent):
    """The customer edited a message; its text changed, the original is in its payload."""

    kind: ClassVar[str] = "message.edited"
    message_id: int = 0


@dataclass(frozen=True)
class ConversationCreated(ConversationEvent):
    kind: ClassVar[str] = "conversation.created"
    contact_id: int = 0
    status: str = "bot"


@dataclass(frozen=True)
class ConversationUpdated(ConversationEvent):
    kind: ClassVar[str] = "conversation.updated"
    status: str = ""
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConversationTyping(ConversationEvent):
    """Someone is typing in a conversation (an agent in the workspace, or a visitor in the web chat).

    Screens only: never stored, published directly (not on a transaction) and dropped by anyone not listening.
    ``who`` is "agent" or "contact"; ``user_id``/``name`` name the agent; ``typing`` False when they stopped.
    """

    kind: ClassVar[str] = "conversation.typing"
    who: str = "agent"
    user_id: int | None = None
    name: str = ""
    typing: bool = True


@dataclass(frozen=True)
class RatingRecorded(ConversationEvent):
    """The customer rated a conversation (quality/csat.py); again when their comment follows."""

    kind: ClassVar[str] = "rating.recorded"
    rating_id: int = 0
    contact_id: int = 0
    scale: str = "csat"
    score: int = 0
    comment: str = ""


@dataclass(frozen=True)
class IntentHeard(ConversationEvent):
    """The bot recognised an intent in a customer's message (bot/apply.py, once per message and intent): the
    bot report's top intents (reports/) count these; the bot session's state keeps them as history."""

    kind: ClassVar[str] = "bot.intent_heard"
    intent: str = ""
    message_id: int = 0


@dataclass(frozen=True)
class AgentChanged(Event):
    """An agent's presence, capacity, skills or teams changed: routing may have work to do."""

    kind: ClassVar[str] = "agent.changed"
    user_id: int
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AccessRevoked(Event):
    """Login sessions or API tokens of a user stopped being valid: sockets opened with them must close.

    ``reason`` says why (logged_out, password_changed, password_reset, user_deactivated, token_revoked).
    """

    kind: ClassVar[str] = "access.revoked"
    user_id: int
    session_ids: tuple[int, ...] = ()
    token_ids: tuple[int, ...] = ()
    reason: str = "session_ended"


@dataclass(frozen=True)
class ContactChanged(Event):
    kind: ClassVar[str] = "contact.changed"
    contact_id: int
    action: str  # created, updated, merged, deleted, identity_linked, split
    merged_into: int | None = None


@dataclass(frozen=True)
class NotificationCreated(Event):
    """A person got a notification (notifications/): delivered to that user's screens only."""

    kind: ClassVar[str] = "notification.created"
    user_id: int
    notification_id: int
    severity: str = "info"
    title: str = ""
    body: str = ""
    conversation_id: int | None = None
    # The notification's own kind (bot.served, sla.breach, …); ``kind`` is the event's name on the wire.
    notification_kind: str = ""


@dataclass(frozen=True)
class AlertRaised(Event):
    """A quality alert was raised (quality/alerts.py): an SLA breach, a bad rating, a failing channel, …"""

    kind: ClassVar[str] = "alert.raised"
    alert_id: int
    alert_kind: str
    severity: str = "warning"
    conversation_id: int | None = None
    team_id: int | None = None
    target: str = ""  # what the alert is about where it has one (the SLA target: first_response, resolution, …)


@dataclass(frozen=True)
class CannedChanged(Event):
    """A canned response was created, changed or deleted: open workspaces read the list again.

    ``team_ids``: the response's team before and after the change; empty when it was or is for everyone.
    """

    kind: ClassVar[str] = "canned.changed"
    canned_id: int
    action: str  # created, updated, deleted
    team_ids: tuple[int, ...] = ()  # empty: a response for everyone


@dataclass(frozen=True)
class NotificationStatusChanged(Event):
    """A notification sent through the notifications API (outbound/) was sent on one of its channels, or failed
    on all of them. Delivery and reading are the message's own status events."""

    kind: ClassVar[str] = "notification.status_changed"
    notification_id: int
    contact_id: int
    status: str


@dataclass(frozen=True)
class CampaignStatusChanged(Event):
    """A campaign started, paused, resumed, was cancelled or finished (outbound/campaigns.py)."""

    kind: ClassVar[str] = "campaign.status_changed"
    campaign_id: int
    status: str


@dataclass(frozen=True)
class EventsGap(Event):
    """This process may have missed events of other processes (the link between them broke and came back).

    Never published by an action: the cluster's bus (cluster/redis.py) hands it to the ``everywhere`` subscribers
    of this process, which tell their screens to catch up from the database.
    """

    kind: ClassVar[str] = "events.gap"
    reason: str = ""


Handler = Callable[[Event], Awaitable[None]]


class Bus(Protocol):
    """Where events go after commit: this process's subscribers, and with a cluster (cluster/) every process's.

    A subscriber hears the events published in its own process; one subscribed ``everywhere`` (screens' socket
    hubs, caches) also hears those of every other process. Work an event starts (the bot's step, a CRM lookup)
    is done once, by the process that published it, so such subscribers are not ``everywhere``.
    """

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, handler: Handler, *, kinds: tuple[type[Event], ...] = (Event,),
                  everywhere: bool = False) -> None: ...


class InProcessBus:
    """Deliver events to the subscribers of this process, in order, one at a time."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[tuple[type[Event], ...], Handler, bool]] = []

    def subscribe(self, handler: Handler, *, kinds: tuple[type[Event], ...] = (Event,),
                  everywhere: bool = False) -> None:
        self._subscribers.append((kinds, handler, everywhere))

    async def publish(self, event: Event) -> None:
        await self.deliver(event, remote=False)

    async def deliver(self, event: Event, *, remote: bool) -> None:
        """Hand ``event`` to this process's subscribers; one from another process (``remote``) only to those
        subscribed ``everywhere``."""
        for kinds, handler, everywhere in self._subscribers:
            if (everywhere or not remote) and isinstance(event, kinds):
                try:
                    await handler(event)
                except Exception:
                    log.exception("event handler %r failed on %s", handler, event.kind)
