"""Users, teams and skills on the wire."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from kommutator.common.pagination import Page
from kommutator.common.schemas import MAX_ID, ReadModel, Strict

Role = Literal["admin", "supervisor", "agent"]
Presence = Literal["online", "away", "offline"]
Locale = Literal["en", "ru"]


class SkillLevel(Strict):
    skill_id: int = Field(ge=1, le=MAX_ID)
    level: int = Field(ge=1, le=10)


class UserCreate(Strict):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = "agent"
    locale: Locale = "en"
    capacity: int = Field(default=5, ge=0, le=100)


class UserUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=1024,
                                 description="A new password. Changing your own ends your other sessions and needs "
                                             "current_password; an administrator's reset of someone else's ends all "
                                             "their sessions and revokes their API tokens")
    current_password: str | None = Field(default=None, min_length=1, max_length=1024,
                                         description="Your current password; required to change your own password")
    role: Role | None = None
    locale: Locale | None = None
    capacity: int | None = Field(default=None, ge=0, le=100)
    presence: Presence | None = None
    active: bool | None = None
    channel_weights: dict[str, float] | None = Field(
        default=None, description="How much one conversation of a channel type counts against capacity, "
                                  "e.g. {\"email\": 0.5}; types not listed count 1")


class UserRead(ReadModel):
    id: int
    email: str
    name: str
    role: str
    locale: str
    capacity: int
    presence: str
    active: bool
    channel_weights: dict[str, float] = {}
    load: float = Field(0, description="The weights of the conversations assigned to the user now")
    team_ids: list[int] = []
    skills: list[SkillLevel] = []
    created_at: dt.datetime


class UserList(Page):
    items: list[UserRead]


class TeamCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)


class TeamUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)


class TeamRead(ReadModel):
    id: int
    name: str
    description: str
    member_ids: list[int] = []


class TeamMembers(Strict):
    user_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(max_length=1000)


class SkillCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)


class SkillRead(ReadModel):
    id: int
    name: str
    description: str


class UserSkills(Strict):
    skills: list[SkillLevel] = Field(max_length=200)
