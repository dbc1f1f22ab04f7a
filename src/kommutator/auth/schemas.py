"""Login and API tokens on the wire."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from kommutator.agents.schemas import UserRead
from kommutator.common.schemas import ReadModel, Strict


class LoginRequest(Strict):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class Me(ReadModel):
    user: UserRead
    csrf_token: str | None = None


class ApiTokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)


class ApiTokenRead(ReadModel):
    id: int
    name: str
    prefix: str
    user_id: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiTokenCreated(ApiTokenRead):
    token: str = Field(description="Shown once; store it now. Send as 'Authorization: Bearer <token>'.")
