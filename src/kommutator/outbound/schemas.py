"""Outbound on the wire: starting a conversation, templates, notifications and their attempts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import EmailStr, Field, model_validator

from kommutator.common.schemas import MAX_ID, ReadModel, Strict

TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,120}$", description="As approved at the provider")]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", description="ru, en, en_US, …")]
ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")]
ChannelChoice = Annotated[str, Field(pattern=r"^([a-z][a-z0-9_]{1,19}|[1-9][0-9]{0,17})$")]
Purpose = Literal["service", "marketing"]


class TemplateFields(Strict):
    template: TemplateName | None = Field(default=None, description="A template's name instead of text")
    language: Language | None = Field(default=None, description="The template's language; default: the contact's")
    # Any key: a name the template does not have is 422 template_parameters_unknown, which says which.
    parameters: dict[str, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=20, description="The template's parameters by name")

    @model_validator(mode="after")
    def _text_or_template(self) -> TemplateFields:
        text = getattr(self, "text", None)
        if bool(text and text.strip()) == bool(self.template):
            raise ValueError("give either text or template (with its parameters), not both or neither")
        return self


class ConversationStart(TemplateFields):
    contact_id: int = Field(ge=1, le=MAX_ID)
    channel: ChannelChoice = Field(
        default="preferred", description="A channel id, or 'preferred': the customer's preferred channel they "
                                         "can be reached on")
    text: str | None = Field(default=None, max_length=20000)
    subject: str = Field(default="", max_length=300, description="Needed for email")


class StartPreview(ReadModel):
    """Where a first message would go and how it would travel, or why a channel refuses it."""

    channel_id: int | None
    channel_type: str | None
    allowed: bool
    code: str = ""
    detail: str = ""
    sentences: dict[str, str] = Field(default={}, description="The refusal in English and Russian")
    measure: dict[str, object] = {}


class StartedRead(ReadModel):
    conversation_id: int
    message_id: int
    channel_id: int
    channel_type: str
    measure: dict[str, object] = Field(default={}, description="SMS: encoding and segments")


class TemplateCreate(Strict):
    name: TemplateName
    language: Language
    category: Literal["utility", "marketing"] = "utility"
    body: str = Field(min_length=1, max_length=1024, description="Text with {{parameter}} placeholders")
    parameters: list[ParameterName] = Field(default_factory=list, max_length=20,
                                            description="Placeholder names, in the provider template's order")
    approved: bool = Field(default=True, description="Approved by the provider (WhatsApp)")


class TemplateUpdate(Strict):
    name: TemplateName | None = None
    language: Language | None = None
    category: Literal["utility", "marketing"] | None = None
    body: str | None = Field(default=None, min_length=1, max_length=1024)
    parameters: list[ParameterName] | None = Field(default=None, max_length=20)
    approved: bool | None = None


class TemplateRead(ReadModel):
    id: int
    name: str
    language: str
    category: str
    body: str
    parameters: list[str]
    approved: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class TemplateList(ReadModel):
    items: list[TemplateRead]


class ContactRef(Strict):
    """Find the contact by one of these."""

    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()-]{3,30}$", max_length=32)
    email: EmailStr | None = None
    channel_type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{1,19}$")
    external_id: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one(self) -> ContactRef:
        given = [bool(self.phone), bool(self.email), bool(self.channel_type and self.external_id)]
        if sum(given) != 1 or bool(self.channel_type) != bool(self.external_id):
            raise ValueError("give exactly one of phone, email, or channel_type with external_id")
        return self


class NotificationCreate(TemplateFields):
    contact_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    contact: ContactRef | None = None
    text: str | None = Field(default=None, max_length=4096)
    subject: str = Field(default="", max_length=300, description="For email")
    channels: Literal["preferred"] | list[ChannelChoice] = Field(
        default="preferred", description="'preferred', or channel ids / channel types to try in this order; the "
                                         "next is tried when one fails")
    purpose: Purpose = Field(default="service", description="marketing needs the contact's marketing consent")

    @model_validator(mode="after")
    def _contact(self) -> NotificationCreate:
        if (self.contact_id is None) == (self.contact is None):
            raise ValueError("give contact_id or contact, not both or neither")
        if isinstance(self.channels, list) and not 1 <= len(self.channels) <= 10:
            raise ValueError("channels: between 1 and 10 entries")
        return self


class AttemptRead(ReadModel):
    position: int
    channel_id: int | None
    channel_type: str
    message_id: int | None
    conversation_id: int | None
    status: str = Field(description="queued, sent, delivered, read, failed")
    reason: str
    created_at: dt.datetime
    updated_at: dt.datetime


class NotificationRead(ReadModel):
    id: int
    contact_id: int
    purpose: str
    status: str = Field(description="sending, sent, delivered, read or failed: the furthest any attempt got")
    text: str
    plan: list[int] = Field(description="The channel ids to try, in order")
    skipped: list[dict[str, object]] = Field(description="Channels left out and why")
    attempts: list[AttemptRead] = []
    created_at: dt.datetime
    updated_at: dt.datetime


# --- Segments and campaigns --------------------------------------------------------------------------------------

AttributeValue = Annotated[str, Field(max_length=200)] | int | float | bool


class SegmentRules(Strict):
    """Who is in the audience: every rule given must hold (an empty rule set is every contact)."""

    attributes: dict[Annotated[str, Field(max_length=60)], AttributeValue] = Field(
        default_factory=dict, max_length=20, description="Contact attributes equal to these values")
    labels: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=20, description="Has a conversation with any of these labels")
    channel_types: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,19}$")]] = Field(
        default_factory=list, max_length=10, description="Has an identity (or, for sms/email, a phone/address) on "
                                                         "any of these channel types")
    preferred_channel: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{1,19}$")
    last_contact_within_days: int | None = Field(default=None, ge=1, le=3650,
                                                 description="Wrote to us within this many days")
    last_contact_before_days: int | None = Field(default=None, ge=1, le=3650,
                                                 description="Has not written for at least this many days")
    manager_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Their personal manager")
    language: Literal["en", "ru"] | None = None
    consent: Literal["marketing", "service"] | None = Field(
        default=None, description="marketing: agreed to marketing on some channel; service: has not refused all")


class SegmentCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    rules: SegmentRules = Field(default_factory=SegmentRules)


class SegmentUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rules: SegmentRules | None = None


class SegmentRead(ReadModel):
    id: int
    name: str
    rules: dict[str, object]
    count: int = Field(default=0, description="Contacts in it now")
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentList(ReadModel):
    items: list[SegmentRead]


class AudienceCount(ReadModel):
    count: int


class CampaignCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    segment_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=20)
    purpose: Purpose = "marketing"
    texts: dict[Literal["en", "ru"], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, description="The text per language with {{name}}, {{first_name}} or {{attribute}} "
                                          "(or {{attribute|default}}) placeholders; the contact's language picks")
    subject: str = Field(default="", max_length=300, description="For email")
    template: TemplateName | None = Field(default=None, description="A template instead of text (WhatsApp)")
    # Any key: a name the template does not have is 422 template_parameters_unknown, which says which.
    parameters: dict[str, Annotated[str, Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=20, description="The template's parameters; placeholders allowed")
    channel: ChannelChoice = Field(default="preferred", description="'preferred', or a channel id or type")
    starts_at: dt.datetime | None = Field(default=None, description="Not before this time (default: when started)")
    quiet_from: int = Field(default=21, ge=0, le=23, description="Local hour the quiet hours begin")
    quiet_to: int = Field(default=9, ge=0, le=23, description="Local hour they end (equal: no quiet hours)")
    timezone: str = Field(default="UTC", max_length=64,
                          description="For contacts without a 'timezone' attribute (IANA name)")
    per_minute: int = Field(default=600, ge=1, le=100_000, description="At most this many messages a minute")


class CampaignUpdate(Strict):
    """Change a draft: only the fields given (a field left out keeps its value; ``template: null`` removes the
    template, and the texts given replace all texts)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    segment_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(default=None, min_length=1, max_length=20)
    purpose: Purpose | None = None
    texts: dict[Literal["en", "ru"], Annotated[str, Field(max_length=4096)]] | None = None
    subject: str | None = Field(default=None, max_length=300)
    template: TemplateName | None = None
    parameters: dict[str, Annotated[str, Field(max_length=1000)]] | None = Field(default=None, max_length=20)
    channel: ChannelChoice | None = None
    starts_at: dt.datetime | None = None
    quiet_from: int | None = Field(default=None, ge=0, le=23)
    quiet_to: int | None = Field(default=None, ge=0, le=23)
    timezone: str | None = Field(default=None, max_length=64)
    per_minute: int | None = Field(default=None, ge=1, le=100_000)


class CampaignStats(ReadModel):
    targeted: int = 0
    pending: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = Field(default={}, description="no_consent, no_reachable_channel, "
                                                                    "window_closed")
    cancelled: int = 0
    queued: int = Field(default=0, description="Written, not yet sent")
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    replied: int = 0


class CampaignRead(ReadModel):
    id: int
    name: str
    segment_ids: list[int]
    purpose: str
    texts: dict[str, str]
    subject: str
    template: str | None
    parameters: dict[str, str]
    channel: str
    starts_at: dt.datetime | None
    quiet_from: int
    quiet_to: int
    timezone: str
    per_minute: int
    status: str = Field(description="draft, running, paused, cancelled, done")
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_at: dt.datetime
    stats: CampaignStats = Field(default_factory=CampaignStats)


class CampaignList(ReadModel):
    items: list[CampaignRead]


class RecipientRead(ReadModel):
    contact_id: int
    key: str
    status: str
    reason: str
    channel_id: int | None
    message_id: int | None
    conversation_id: int | None
    due_at: dt.datetime


class RecipientList(ReadModel):
    items: list[RecipientRead]
