"""Inbound messages from an integrator's system, authenticated with the channel's bearer token."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, ValidationError

from kommutator.channels.base import (
    Accepted,
    Capabilities,
    ChannelAdapter,
    ChannelConfig,
    InboundMessage,
    InboundRequest,
    InboundResult,
    InboundSender,
)
from kommutator.channels.registry import register
from kommutator.common.schemas import Strict
from kommutator.crypto import new_token, same
from kommutator.errors import ProblemError


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outbound_url: HttpUrl | None = Field(default=None, description="Where agent replies are delivered")


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


class ApiInbound(Strict):
    """POST /webhooks/{channel_id} with 'Authorization: Bearer <inbound token>'."""
    id: str = Field(min_length=1, max_length=255, description="Your message id; a repeat is ignored")
    contact: ApiContact
    text: str = Field(min_length=1, max_length=20000)
    attributes: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


@register
class ApiChannel(ChannelAdapter):
    type = "api"
    title = "API"
    capabilities = Capabilities(max_text_length=20000)
    Settings = ApiSettings
    Credentials = ApiCredentials

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

    def parse(self, channel: ChannelConfig, request: InboundRequest) -> list[InboundMessage]:
        try:
            raw = json.loads(request.body)
        except ValueError as exc:
            raise ProblemError(400, "invalid_json", f"The request body is not valid JSON ({exc}).") from exc
        try:
            body = ApiInbound.model_validate(raw)
        except ValidationError as exc:
            errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                      for e in exc.errors()]
            raise ProblemError(422, "validation_failed", f"{errors[0]['field']}: {errors[0]['message']}",
                               errors=errors) from exc
        c = body.contact
        sender = InboundSender(external_id=c.id, name=c.name, email=str(c.email).lower() if c.email else None,
                               phone=c.phone, language=c.language, display=c.name or c.id)
        return [InboundMessage(event_id=body.id, provider_message_id=body.id, sender=sender, text=body.text,
                               attributes=dict(body.attributes))]

    def acknowledge(self, channel: ChannelConfig, request: InboundRequest,
                    accepted: list[Accepted]) -> InboundResult:
        (one,) = accepted
        return InboundResult(200, {"ok": True, "duplicate": one.duplicate, "conversation_id": one.conversation_id,
                                   "message_id": one.message_id})
