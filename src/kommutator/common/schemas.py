"""Shared schema pieces."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Ids in paths and bodies: positive and within BIGINT, so PostgreSQL never sees an overflow.
MAX_ID = 2**62
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive integer id")]
