"""Conversations and messages on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from kommutator.common.pagination import Page
from kommutator.common.schemas import MAX_ID, ReadModel, Strict
from kommutator.contacts.schemas import ContactRead

Label = Annotated[str, Field(pattern=r"^[\w-]{1,50}$", description="Letters, digits, _ and -")]
OptId = Annotated[int | None, Field(ge=1, le=MAX_ID)]


class AttachmentRead(ReadModel):
    id: int
    filename: str
    content_type: str
    size: int


class MessageRead(ReadModel):
    id: int
    conversation_id: int
    direction: str
    sender_type: str
    sender_user_id: int | None
    kind: str
    channel_id: int | None
    text: str
    payload: dict[str, Any]
    status: str
    status_reason: str
    created_at: dt.datetime
    attachments: list[AttachmentRead] = []


class MessageList(Page):
    items: list[MessageRead]


class TransitionRead(ReadModel):
    id: int
    from_status: str | None
    to_status: str
    assignee_id: int | None
    team_id: int | None
    actor_user_id: int | None
    reason: str = Field(description="Why, in English (kept for integrations)")
    reason_code: str = Field("", description="Why, as a code screens render in their language "
                                             "(docs/workspace.md); empty for older rows")
    reason_params: dict[str, Any] = Field(default_factory=dict, description="The values the code's text names")
    at: dt.datetime


class LastMessage(ReadModel):
    text: str = Field(description="The first 200 characters")
    direction: str
    kind: str


class WaitingReason(BaseModel):
    code: str = Field(description="closed, closed_unknown, nobody_online, nobody_online_team, no_skill, "
                                  "no_skill_together, at_capacity, manager_away, manager_waited")
    params: dict[str, Any] = Field(description="The values the texts name (skill, level, team, manager, opens …)")
    since: dt.datetime | None = Field(None, description="Since when this has been the reason")
    en: str
    ru: str


class ConversationRead(ReadModel):
    id: int
    contact_id: int
    contact_name: str = ""
    status: str
    assignee_id: int | None
    team_id: int | None
    queue_id: int | None
    priority: str
    subject: str
    labels: list[str] = []
    last_inbound_channel_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    last_message_at: dt.datetime
    last_customer_message_at: dt.datetime | None
    queued_at: dt.datetime | None
    assigned_at: dt.datetime | None
    first_response_at: dt.datetime | None
    waiting_since: dt.datetime | None
    snoozed_until: dt.datetime | None
    resolved_at: dt.datetime | None
    reopened_at: dt.datetime | None
    accepted_at: dt.datetime | None = None
    preferred_agent_id: int | None = Field(None, description="The personal manager routing tries first")
    routing_hold: str = Field("", description="'choice': the customer is asked whether to wait for their manager; "
                                              "'manager': waiting for the manager; 'free': any agent")
    hold_until: dt.datetime | None = None
    merged_into_id: int | None = Field(None, description="Closed by a merge of two contacts: the conversation its "
                                                         "messages moved to")
    waiting_reason: WaitingReason | None = Field(
        None, description="In the queue without an agent: why (the routing pass's latest finding)")
    unread: int | None = Field(None, description="In lists: customer messages you have not read yet "
                                                 "(POST /conversations/{id}/read marks them read)")
    last_message: LastMessage | None = Field(None, description="In lists: the latest message, for a preview")


class ConversationList(Page):
    items: list[ConversationRead]


class ConversationDetail(ConversationRead):
    contact: ContactRead
    messages: list[MessageRead]
    transitions: list[TransitionRead]
    more_messages_before: int | None = Field(None, description="Pass as before_id to load older messages")


class MessageCreate(Strict):
    text: str = Field(min_length=1, max_length=20000)
    kind: Literal["text", "note"] = Field("text", description="'note' is a private note, never sent")
    channel_id: OptId = Field(None, description="Send through this channel; default: the customer's latest")


class AssignRequest(Strict):
    assignee_id: OptId = Field(None, description="null to unassign (back to the queue)")
    team_id: OptId = None
    queue_id: OptId = Field(None, description="Transfer to a queue: routing then finds an agent by its rules "
                                              "(use with assignee_id null)")
    note: str = Field("", max_length=2000, description="Handover note, shown to the receiver")


class StatusRequest(Strict):
    status: Literal["open", "queued", "waiting", "snoozed", "resolved"]
    snoozed_until: dt.datetime | None = None
    reason: str = Field("", max_length=500)


class ConversationUpdate(Strict):
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    subject: str | None = Field(None, max_length=300)


class LabelsRequest(Strict):
    labels: list[Label] = Field(max_length=50)
