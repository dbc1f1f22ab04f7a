"""What the widget's endpoints answer, declared for the OpenAPI document. The handlers build plain dicts; these
models describe them (routes use ``response_model_exclude_unset``, so a key a handler leaves out stays out)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class WidgetVisitor(_Answer):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class WidgetInvitation(_Answer):
    """An invitation the widget shows by itself when its triggers hold (docs/channels/webchat.md)."""

    id: str
    text_en: str
    text_ru: str
    after_seconds: int
    url_pattern: str = Field(description="* stands for anything; empty: every page")
    returning: bool | None = Field(description="true: only returning visitors; false: only new ones; null: both")


class WidgetChannel(_Answer):
    """The chat's public look and limits."""

    id: int
    title: str
    greeting: str
    color: str
    language: str
    position: str
    prechat_fields: list[str]
    offline_form: bool
    online: bool = Field(description="An agent is on duty (else the offline form, when enabled and no bot)")
    bot: bool = Field(False, description="The bot answers here (a flow is attached): the chat stays open even "
                                         "with nobody on duty, instead of the offline form")
    max_file_bytes: int
    file_types: list[str]
    invitations: list[WidgetInvitation] = Field(default_factory=list, description="The enabled invitations")


class WidgetSession(_Answer):
    token: str = Field(description="The visitor token: send it as 'Authorization: Bearer <token>'")
    renewed: bool = Field(description="A new token (the one sent was missing or stale): store this one")
    visitor: WidgetVisitor
    missing: list[str] = Field(description="Pre-chat fields still to fill in")
    channel: WidgetChannel


class WidgetVisitorUpdated(_Answer):
    visitor: WidgetVisitor
    missing: list[str]


class WidgetFile(_Answer):
    id: int
    filename: str
    content_type: str
    size: int


class WidgetButton(_Answer):
    id: str
    label: str


class WidgetMessage(_Answer):
    id: int
    direction: Literal["in", "out"]
    sender: str = Field(description="customer, agent or bot")
    text: str
    created_at: str = Field(description="ISO 8601, UTC")
    name: str = Field(description="The agent's name on their messages, else empty")
    attachments: list[WidgetFile]
    client_id: str | None = Field(default=None, description="The visitor's messages: the widget's id for it")
    status: str | None = Field(default=None, description="The visitor's messages: received")
    buttons: list[WidgetButton] | None = Field(default=None, description="Replies: buttons to offer")


class WidgetMessages(_Answer):
    messages: list[WidgetMessage]
    has_more: bool
    agent: str = Field(description="The name of the agent on the chat, empty when none")


class WidgetReceived(_Answer):
    client_id: str
    message_id: int | None
    duplicate: bool = Field(description="This client_id came before; nothing new was stored")


class WidgetProofSent(_Answer):
    kind: str = Field(description="email or phone")
    sent_to: str = Field(description="Where the code went, partly hidden (a…@example.com, +7912***6789)")
    expires_at: str = Field(description="When the code stops working, ISO 8601 UTC")


class WidgetProofChecked(_Answer):
    verified: bool
    kind: str = Field(description="email or phone")
    value: str = Field(description="The value proven, partly hidden")


class InvitationStat(_Answer):
    id: str
    text_en: str
    text_ru: str
    enabled: bool
    shown: int = Field(description="Times a visitor's widget showed it")
    accepted: int = Field(description="Times a visitor answered it (opened the chat from it)")
    acceptance_rate: float | None = Field(description="accepted / shown; null before it was shown")


class ChannelStats(_Answer):
    channel_id: int
    invitations: list[InvitationStat] = Field(description="The channel's invitations (web chat), then any no longer "
                                                          "set that were counted before")
