"""The alert destination interface: what carries an alert outside the workspace (email, Telegram, a webhook …).

A destination is a small class shaped like a channel adapter: a ``name`` (the ``alert_deliveries.channel`` of
its rows), ``targets(rule, extra)`` — where one alert goes under an alert rule — and ``send(ctx, target,
message)``, which delivers one message or raises ``DeliveryError`` (retryable or not; a provider's
Retry-After is kept). Settings of destinations that need more than the rule's own columns live in
``alert_rules.destinations[name]``, validated by the destination's ``settings_model``; fields named in
``secret_fields`` are stored encrypted and never read back. ``outbound_targets(settings)`` names the URLs it
connects to, which the rule's save checks with the outbound guard.

Destinations are registered by name from the composition root (``destinations.register_all``, run by app.py's
``register_all``); nothing registers itself by being imported. Rows are sent by ``quality/delivery.py`` with the
outbox's retry policy (``workers/retry.py``).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from kommutator.config import Settings
from kommutator.crypto import SecretBox
from kommutator.quality.models import AlertRule


class DeliveryError(Exception):
    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.retry_after = reason, retryable, retry_after


@dataclass(frozen=True)
class AlertMessage:
    """One alert as a destination sends it: in one language when the reader's is known, else both."""

    alert_id: int
    delivery_id: int
    kind: str
    severity: str
    title: str
    body: str
    link: str
    conversation_id: int | None
    created_at: dt.datetime
    language: str | None  # "ru", "en", or None: both languages, one after the other

    @property
    def text(self) -> str:
        return f"{self.body or self.title}\n\n{self.link}"


@dataclass(frozen=True)
class SendContext:
    settings: Settings
    client: httpx.AsyncClient  # the guarded client (net/http.py): every connection passes the outbound guard
    box: SecretBox
    rule: AlertRule | None

    def own_settings(self, name: str) -> dict[str, Any]:
        """The rule's settings of destination ``name``, secrets decrypted."""
        stored = dict(((self.rule.destinations or {}) if self.rule else {}).get(name) or {})
        found = get(name)
        for field in (found.secret_fields if found else ()):
            if stored.get(field):
                stored[field] = str(self.box.decrypt(stored[field]).get("value", ""))
        return stored


class AlertDestination(ABC):
    name: ClassVar[str]
    title: ClassVar[dict[str, str]]  # {"en": …, "ru": …} for screens
    settings_model: ClassVar[type[BaseModel] | None] = None  # its part of alert_rules.destinations, if any
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def targets(self, rule: AlertRule | None, extra: Mapping[str, Sequence[str]]) -> list[str]:
        """Where one alert goes under ``rule`` (None: no rule); ``extra``: targets the caller adds by
        destination name (e.g. a policy's ``notify_emails`` under "email")."""

    @abstractmethod
    async def send(self, ctx: SendContext, target: str, message: AlertMessage) -> None:
        """Deliver one message, or raise DeliveryError."""

    def outbound_targets(self, settings: Mapping[str, Any]) -> list[str]:
        """URLs these settings make us connect to (checked with the outbound guard when a rule is saved)."""
        return []


_registry: dict[str, AlertDestination] = {}


def register(destination: AlertDestination) -> None:
    if destination.name in _registry and type(_registry[destination.name]) is not type(destination):
        raise RuntimeError(f"alert destination {destination.name!r} is registered twice")
    _registry[destination.name] = destination


def unregister(name: str) -> None:
    _registry.pop(name, None)


def get(name: str) -> AlertDestination | None:
    return _registry.get(name)


def registered() -> list[AlertDestination]:
    return list(_registry.values())
