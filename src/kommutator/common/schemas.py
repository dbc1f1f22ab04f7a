"""Shared schema pieces."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, field_validator


def reject_nul(value: Any) -> Any:
    """NUL characters are refused everywhere: PostgreSQL cannot store them and no human types them."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
    elif isinstance(value, dict):
        for k, v in value.items():
            reject_nul(k)
            reject_nul(v)
    elif isinstance(value, list):
        for v in value:
            reject_nul(v)
    return value


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Ids in paths and bodies: positive and within BIGINT, so PostgreSQL never sees an overflow.
MAX_ID = 2**62
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive integer id")]


# A file in a response's OpenAPI content (generated clients then hand back the bytes, not parsed JSON).
FILE: dict[str, str] = {"type": "string", "format": "binary"}
