"""Canned responses on the wire."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from kommutator.common.schemas import MAX_ID, ReadModel, Strict

SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,31}$"
PLACEHOLDERS = ("{contact.name}", "{contact.email}", "{contact.phone}", "{agent.name}")


class CannedCreate(Strict):
    shortcut: str = Field(pattern=SHORTCUT, description="Typed as /shortcut in the reply box: a-z, 0-9, _ and -")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000, description="Placeholders: " + ", ".join(PLACEHOLDERS))
    team_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this team's agents; null: everyone")


class CannedUpdate(Strict):
    shortcut: str | None = Field(None, pattern=SHORTCUT)
    title: str | None = Field(None, min_length=1, max_length=200)
    body: str | None = Field(None, min_length=1, max_length=5000)
    team_id: int | None = Field(None, ge=1, le=MAX_ID)


class CannedRead(ReadModel):
    id: int
    team_id: int | None
    shortcut: str
    title: str
    body: str
    created_by_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
