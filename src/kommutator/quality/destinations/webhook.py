"""Alerts to any chat system or service that takes a signed webhook (Standard Webhooks headers, HMAC-SHA256).

The rule's ``destinations.webhook`` names the ``url`` and a ``secret`` (``whsec_`` + base64, as Standard
Webhooks generates them, or any passphrase of 24+ characters); each delivery is one POST through the guarded
client with::

    webhook-id: alert-<delivery id>        (the same on every retry: the receiver drops repeats)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">

and a JSON body ``{"type": "alert.<kind>", "timestamp", "text", "data": {...}}`` — ``text`` (title, body and
link) is what Slack- and Mattermost-style incoming webhooks show.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, Field, field_validator

from kommutator.clock import now
from kommutator.common import webhook_signing
from kommutator.net.guard import OutboundRefused
from kommutator.quality.destinations.base import AlertDestination, AlertMessage, DeliveryError, SendContext
from kommutator.quality.destinations.telegram import retry_after
from kommutator.quality.models import AlertRule

TIMEOUT = 10.0


class WebhookSettings(BaseModel):
    url: str = Field(max_length=254, pattern=r"^https?://[^\s/]+(/\S*)?$", description="Where to POST")
    secret: str | None = Field(default=None, min_length=24, max_length=200,
                               description="Write-only: whsec_<base64> or a passphrase of 24+ characters")

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("whsec_"):
            try:
                base64.b64decode(value[6:], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("a whsec_ secret must be base64 after the prefix") from None
        return value


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value (common/webhook_signing.py)."""
    return webhook_signing.sign(secret, webhook_id, timestamp, body)


def payload(message: AlertMessage) -> dict[str, Any]:
    return {"type": f"alert.{message.kind}", "timestamp": message.created_at.isoformat(), "text": message.text,
            "data": {"alert_id": message.alert_id, "kind": message.kind, "severity": message.severity,
                     "title": message.title, "body": message.body, "link": message.link,
                     "conversation_id": message.conversation_id, "language": message.language}}


class WebhookDestination(AlertDestination):
    name = "webhook"
    title = {"en": "Signed webhook", "ru": "Подписанный вебхук"}
    settings_model = WebhookSettings
    secret_fields = ("secret",)

    def targets(self, rule: AlertRule | None, extra: Mapping[str, Sequence[str]]) -> list[str]:
        own = ((rule.destinations or {}) if rule else {}).get(self.name) or {}
        return [str(own["url"])] if own.get("url") and own.get("secret") else []

    def outbound_targets(self, settings: Mapping[str, Any]) -> list[str]:
        return [str(settings["url"])] if settings.get("url") else []

    async def send(self, ctx: SendContext, target: str, message: AlertMessage) -> None:
        secret = ctx.own_settings(self.name).get("secret")
        if not secret:
            raise DeliveryError("the alert rule has no webhook secret any more", retryable=False)
        body = json.dumps(payload(message), ensure_ascii=False, separators=(",", ":")).encode()
        webhook_id, ts = f"alert-{message.delivery_id}", int(now().timestamp())
        headers = {"content-type": "application/json", "webhook-id": webhook_id, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(secret, webhook_id, ts, body)}
        try:
            r = await ctx.client.post(target, content=body, headers=headers, timeout=TIMEOUT)
        except OutboundRefused as exc:
            raise DeliveryError(f"webhook url: {exc.reason}", retryable=False) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"the webhook could not be reached: {type(exc).__name__}") from None
        if 200 <= r.status_code < 300:
            return
        raise DeliveryError(f"the webhook answered {r.status_code}: {r.text[:200]}",
                            retryable=r.status_code in (408, 429) or r.status_code >= 500,
                            retry_after=retry_after(r))
