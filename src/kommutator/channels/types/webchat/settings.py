"""What an administrator sets on a web chat channel (the form in the workspace is built from this model)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What a visitor may attach when the channel does not say: pictures, PDFs, plain text and office documents.
DEFAULT_FILE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
                      "application/msword",
                      "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]
ORIGIN_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"


class Invitation(BaseModel):
    """A proactive invitation: the widget shows ``text`` beside the launcher when every trigger given holds."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="A short name, counted under it in the stats")
    text_en: str = Field(min_length=1, max_length=300, description="The invitation in English")
    text_ru: str = Field(min_length=1, max_length=300, description="The invitation in Russian")
    after_seconds: int = Field(default=0, ge=0, le=3600, description="Seconds on the page before it shows")
    url_pattern: str = Field(default="", max_length=300,
                             description="Only on pages whose address matches, * standing for anything "
                                         "(e.g. */checkout*); empty: every page")
    returning: bool | None = Field(default=None, description="true: only visitors who came before; false: only "
                                                             "new ones; null: both")
    enabled: bool = True


class WebchatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", max_length=80,
                       description="The chat window's title; empty: 'Chat with us' / 'Напишите нам'")
    greeting: str = Field(default="", max_length=500,
                          description="Shown above the first message; empty: a short default greeting")
    color: str = Field(default="#4f46e5", pattern=r"^#[0-9a-fA-F]{6}$",
                       description="Brand colour of the launcher, header and the visitor's messages")
    language: Literal["auto", "en", "ru"] = Field(
        default="auto", description="Texts of the widget; auto: the page's <html lang>, then the browser's")
    position: Literal["right", "left"] = Field(default="right", description="Bottom corner of the launcher")
    allowed_origins: list[str] = Field(
        default_factory=list, max_length=50,
        description="Websites that may embed the chat, as https://shop.example.com (scheme, host, optional "
                    "port); empty: any website")
    prechat_fields: list[Literal["name", "email", "phone"]] = Field(
        default_factory=list, max_length=3,
        description="Asked (and required) before the visitor's first message; empty: no form")
    offline_form: bool = Field(
        default=True, description="When no agent of the channel's team is online, offer to leave a message "
                                  "and an email address instead of a live chat")
    max_file_mb: int = Field(default=10, ge=1, le=100, description="Largest file a visitor may attach, in MB "
                                                                   "(never more than the server's upload cap)")
    file_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILE_TYPES), max_length=50,
        description="Content types a visitor may attach (e.g. image/png, or image/* for every picture)")
    invitations: list[Invitation] = Field(
        default_factory=list, max_length=20,
        description="Proactive invitations (the first whose triggers hold is shown, once per visit)")
    # Named as base.OUTBOUND_DISABLED: declared so that settings read back from the API validate again.
    outbound_disabled: str | None = Field(default=None, max_length=1000,
                                          description="Set by the server when delivery was stopped")

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(ORIGIN_PATTERN, origin, re.IGNORECASE):
                raise ValueError(f"{origin!r} is not an origin such as https://shop.example.com (scheme and "
                                 "host, optional port, no path)")
        return [o.lower() for o in value]

    @field_validator("invitations")
    @classmethod
    def _invitations(cls, value: list[Invitation]) -> list[Invitation]:
        ids = [i.id for i in value]
        if len(set(ids)) != len(ids):
            raise ValueError("each invitation needs its own id")
        return value

    @field_validator("file_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        for kind in value:
            if not re.fullmatch(r"[a-z0-9.+-]+/([a-z0-9.+-]+|\*)", kind):
                raise ValueError(f"{kind!r} is not a content type such as image/png or image/*")
        return value


class WebchatCredentials(BaseModel):
    """The web chat has no secrets: visitors get their own tokens."""

    model_config = ConfigDict(extra="forbid")


def file_type_allowed(settings: WebchatSettings, content_type: str) -> bool:
    """Whether ``content_type`` matches one of the channel's types (``image/*`` matches any picture)."""
    major = content_type.split("/")[0]
    return any(t == content_type or (t.endswith("/*") and t[:-2] == major) for t in settings.file_types)
