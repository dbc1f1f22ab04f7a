"""Contacts on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from kommutator.common.pagination import Page
from kommutator.common.schemas import MAX_ID, ReadModel, Strict

ChannelType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,19}$", description="telegram, email, webchat, ...")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ()-]{3,30}$", max_length=32)]


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    if len(value) > 100:
        raise ValueError("at most 100 attributes")
    for key, item in value.items():
        if not 1 <= len(key) <= 64:
            raise ValueError("attribute names are 1-64 characters")
        if isinstance(item, (dict, list)):
            raise ValueError(f"attribute {key!r} must be a string, number, boolean or null")
        if isinstance(item, str) and len(item) > 2000:
            raise ValueError(f"attribute {key!r} is longer than 2000 characters")
    return value


class IdentityIn(Strict):
    channel_type: ChannelType
    external_id: str = Field(min_length=1, max_length=255)
    display: str = Field(default="", max_length=255)


class ConsentIn(Strict):
    channel_type: ChannelType
    granted: bool = Field(description="Service messages (replies, notifications) on this channel type")
    marketing: bool | None = Field(
        default=None, description="Marketing messages too (campaigns, promotional notifications); null keeps it")
    source: str = Field(default="", max_length=500, description="Where the consent came from")


class ContactCreate(Strict):
    name: str = Field(default="", max_length=200)
    email: EmailStr | None = None
    phone: Phone | None = None
    language: Literal["en", "ru"] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    manager_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)

    _attrs = field_validator("attributes")(_check_attributes)


class ContactUpdate(Strict):
    name: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    phone: Phone | None = None
    language: Literal["en", "ru"] | None = None
    attributes: dict[str, Any] | None = None
    manager_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    consents: list[ConsentIn] | None = Field(default=None, max_length=50)

    _attrs = field_validator("attributes")(_check_attributes)


class ContactMerge(Strict):
    other_id: int = Field(ge=1, le=MAX_ID, description="The duplicate contact folded into this one")


class IdentityRead(ReadModel):
    id: int
    channel_type: str
    external_id: str
    display: str
    verified_email: str | None = Field(
        default=None, description="An email address the channel vouched belongs to this identity, lower-case")
    verified_phone: str | None = Field(
        default=None, description="A phone number the channel vouched belongs to this identity, E.164 (+79123456789)")
    linked_by: str | None = Field(
        default=None, description="Which verified value joined this identity to its contact automatically: email, "
                                  "phone or email+phone; null when it was not linked that way")


class ConsentRead(ReadModel):
    channel_type: str
    granted: bool
    marketing: bool
    source: str
    updated_at: dt.datetime


class ContactRead(ReadModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    language: str | None
    language_source: str | None = Field(
        default=None, description="Where the language came from: agent (set explicitly, wins), provider (the "
                                  "channel's hint), text (detected from the customer's messages)")
    attributes: dict[str, Any]
    manager_id: int | None
    identities: list[IdentityRead] = []
    consents: list[ConsentRead] = []
    preferred_channel: str | None = Field(
        default=None, description="The channel type of most of the contact's own messages, weighted to recent "
                                  "activity (a message 30 days old counts half), among those not refused; null "
                                  "when they never wrote")
    channel_ranking: list[str] = Field(default=[], description="Their channel types, most preferred first")
    # quality/: past ratings, newest first ({conversation_id, scale, score, comment, created_at}); detail only.
    ratings: list[dict[str, Any]] = []
    # crm/: what the company's CRM said about them ({status, data, error, fetched_at}); detail only.
    crm: dict[str, Any] | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class ContactFilters(BaseModel):
    """What the contacts list is narrowed by (GET /contacts and its CSV export take the same)."""

    q: str | None = None
    manager_id: int | None = None
    preferred_channel: str | None = None
    segment: str | None = None
    label: str | None = None


class ContactList(Page):
    items: list[ContactRead]


class IdentitySplitRead(ReadModel):
    """The contact an identity was split off into, and the conversations that went with it."""

    contact: ContactRead
    from_contact_id: int
    moved_conversation_ids: list[int] = Field(
        description="Conversations whose messages all came through channels of the identity's type since it "
                    "joined; empty when another identity of the same channel type stays, as they cannot be told "
                    "apart")
