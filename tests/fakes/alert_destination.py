"""A fake alert destination for tests: registered like the real ones, it keeps what it was asked to send and
fails on demand (retryably, with a Retry-After, or for good)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from kommutator.quality.destinations.base import AlertDestination, AlertMessage, DeliveryError, SendContext
from kommutator.quality.models import AlertRule


class FakeSettings(BaseModel):
    room: str = Field(min_length=1, max_length=40)
    token: str | None = Field(default=None, min_length=4, max_length=100)


class FakeDestination(AlertDestination):
    name = "fake"
    title = {"en": "Fake", "ru": "Подделка"}
    settings_model = FakeSettings
    secret_fields = ("token",)

    def __init__(self) -> None:
        self.sent: list[tuple[str, AlertMessage, str]] = []  # (target, message, the decrypted token)
        self.failures: list[DeliveryError] = []  # raised, first to last, before anything is sent

    def targets(self, rule: AlertRule | None, extra: Mapping[str, Sequence[str]]) -> list[str]:
        own = ((rule.destinations or {}) if rule else {}).get(self.name) or {}
        return [f"room:{own['room']}"] if own.get("room") else []

    async def send(self, ctx: SendContext, target: str, message: AlertMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((target, message, str(ctx.own_settings(self.name).get("token", ""))))
