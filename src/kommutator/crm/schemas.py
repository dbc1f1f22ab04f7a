"""Bodies of /api/v1/integrations/crm and the card's CRM section."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, HttpUrl

from kommutator.common.schemas import ReadModel, Strict


class CrmSettingUpdate(Strict):
    url: HttpUrl | None = Field(None, description="Asked with POST about a contact when a conversation starts")
    enabled: bool | None = None
    ttl_seconds: int | None = Field(None, ge=0, le=30 * 86400, description="How long an answer is reused")
    timeout_seconds: int | None = Field(None, ge=1, le=30, description="How long the CRM may take to answer")
    set_manager: bool | None = Field(None, description="A manager_email the CRM names becomes the contact's "
                                                       "personal manager (when they have none)")


class CrmSettingRead(ReadModel):
    url: str
    enabled: bool
    ttl_seconds: int
    timeout_seconds: int
    set_manager: bool
    secret: str = Field(description="Requests are signed with it as Standard Webhooks (docs/crm.md)")


class CrmCardRead(ReadModel):
    status: str = Field(description="ok, not_found (the CRM does not know them), error or timeout")
    data: dict[str, Any] = Field(description="What the CRM answered: name, tier, orders, manager_email, …")
    error: str
    fetched_at: dt.datetime
