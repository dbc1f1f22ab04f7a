"""Alerts to a Telegram chat through the Bot API's sendMessage, with the rule's bot token (stored encrypted)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from kommutator.common.jsonsafe import loads_json
from kommutator.net.guard import OutboundRefused
from kommutator.quality.destinations.base import AlertDestination, AlertMessage, DeliveryError, SendContext
from kommutator.quality.models import AlertRule


def retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers.get("retry-after", ""))
    except ValueError:
        return None


class TelegramDestination(AlertDestination):
    name = "telegram"
    title = {"en": "Telegram", "ru": "Telegram"}

    def targets(self, rule: AlertRule | None, extra: Mapping[str, Sequence[str]]) -> list[str]:
        return [rule.telegram_chat_id] if rule and rule.telegram_chat_id and rule.telegram_token else []

    async def send(self, ctx: SendContext, target: str, message: AlertMessage) -> None:
        rule = ctx.rule
        if rule is None or not rule.telegram_token:
            raise DeliveryError("the alert rule has no Telegram bot token any more", retryable=False)
        token = str(ctx.box.decrypt(rule.telegram_token).get("token", ""))
        url = f"{ctx.settings.telegram_api_base_url.rstrip('/')}/bot{token}/sendMessage"
        try:
            r = await ctx.client.post(url, json={"chat_id": target, "text": message.text[:4096],
                                                 "disable_web_page_preview": True})
        except OutboundRefused as exc:
            raise DeliveryError(f"telegram_api_base_url: {exc.reason}", retryable=False) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Telegram could not be reached: {type(exc).__name__}") from None
        if r.status_code == 200:
            return
        try:
            answer = loads_json(r.content)
            description = str(answer.get("description", "") if isinstance(answer, dict) else answer)
        except ValueError:
            description = r.text[:200]
        raise DeliveryError(f"Telegram answered {r.status_code}: {description}",
                            retryable=r.status_code == 429 or r.status_code >= 500, retry_after=retry_after(r))
