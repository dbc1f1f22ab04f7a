"""The website chat channel: a widget embedded with one script tag talks to the visitor endpoints of
``api.py`` and ``socket.py``; agent and bot replies travel the outbox like on every channel."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter

from kommutator.channels.base import (
    Capabilities,
    ChannelAdapter,
    ChannelConfig,
    InboundRequest,
    OutboundMessage,
    SendResult,
)
from kommutator.channels.types.webchat.settings import WebchatCredentials, WebchatSettings
from kommutator.errors import ProblemError

# The provider id our outbound messages get; the visitor's socket reports "delivered" against it.
OUT_PREFIX = "webchat-out:"


def embed_snippet(channel: ChannelConfig, base_url: str) -> str:
    """The tag a website pastes before </body>."""
    return f'<script src="{base_url}/widget.js" data-channel="{channel.id}" async></script>'


class WebchatChannel(ChannelAdapter):
    type = "webchat"
    title = "Website chat"
    webhook_media_type = None  # visitors talk to /widget/{id}/…
    receives_webhooks = False  # visitors talk to /widget/{id}/… through the embedded script
    capabilities = Capabilities(max_text_length=5000, buttons=True, max_buttons=10, attachments=True)
    Settings = WebchatSettings
    Credentials = WebchatCredentials

    def routers(self) -> list[APIRouter]:
        from kommutator.channels.types.webchat import proofs, socket  # noqa: F401  (add their routes)
        from kommutator.channels.types.webchat.api import router
        from kommutator.channels.types.webchat.invitations import admin_router

        return [router, admin_router]

    def generate_credentials(self) -> dict[str, Any]:
        return {}

    def setup_instructions(self, channel: ChannelConfig, webhook_url: str) -> str:
        base = webhook_url.rsplit("/webhooks/", 1)[0]
        origins = channel.settings.get("allowed_origins") or []
        where = (f"Only {', '.join(origins)} may embed it (allowed_origins)." if origins else
                 "Any website may embed it; list your sites in allowed_origins to refuse others.")
        return (f"1. Paste this tag into every page of your website, just before </body>:\n"
                f"{embed_snippet(channel, base)}\n"
                f"2. {where}\n"
                f"3. If the website sets a Content-Security-Policy, allow {base} in script-src and connect-src, "
                f"and {base.replace('http', 'ws', 1)} in connect-src.")

    def verify(self, channel: ChannelConfig, request: InboundRequest) -> None:
        raise ProblemError(404, "no_webhooks_on_webchat",
                           f"Website chat channels take no webhooks; visitors talk to /widget/{channel.id}/… "
                           "through the embedded script.")

    async def send(self, channel: ChannelConfig, message: OutboundMessage,
                   client: httpx.AsyncClient) -> SendResult:
        """Nothing to call: the message is in the database, and marking it sent tells the visitor's open sockets
        (on any server process, through the bus) to fetch it; a visitor who is away gets it on reconnect."""
        return SendResult(provider_message_id=f"{OUT_PREFIX}{message.id}")
