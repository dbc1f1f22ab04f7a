"""Shared schema pieces."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


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


_BOOL_REFUSED = "must be a number, not true or false"
_BOOL_WORDS = frozenset({"0", "1", "t", "f", "y", "n", "yes", "no", "on", "off", "true", "false"})


def _members(annotation: Any) -> list[Any]:
    """The types a field accepts at its top level (unions flattened, Annotated unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _numbers_only(members: list[Any]) -> bool:
    """Whether a number is accepted but a boolean is not (pydantic's lax mode would turn true into 1)."""
    def is_bool(m: Any) -> bool:
        return m is bool or m is Any or (typing.get_origin(m) is Literal and any(
            isinstance(v, bool) for v in typing.get_args(m)))
    return not any(is_bool(m) for m in members) and any(m in (int, float) for m in members)


def _bools_only(members: list[Any]) -> bool:
    return bool in members and all(m in (bool, type(None)) for m in members)


def refuse_bool_for_number(annotation: Any, value: Any) -> None:
    """Raise ValueError when ``value`` is a boolean (or holds one) where ``annotation`` declares numbers, or
    something else than a boolean where it declares only booleans (lax mode takes 0, "yes" and "off")."""
    members = _members(annotation)
    if not isinstance(value, bool) and value is not None and _bools_only(members):
        raise ValueError("must be true or false")
    if isinstance(value, bool):
        if _numbers_only(members):
            raise ValueError(_BOOL_REFUSED)
        return
    if isinstance(value, list | tuple | set | frozenset) and any(isinstance(v, bool) for v in value):
        for m in members:
            if typing.get_origin(m) in (list, tuple, set, frozenset) and _numbers_only(
                    [x for arg in typing.get_args(m) if arg is not Ellipsis for x in _members(arg)]):
                raise ValueError(_BOOL_REFUSED)
    if isinstance(value, dict) and any(isinstance(v, bool) for v in value.values()):
        for m in members:
            args = typing.get_args(m)
            if typing.get_origin(m) is dict and len(args) == 2 and _numbers_only(_members(args[1])):
                raise ValueError(_BOOL_REFUSED)


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently; numbers are numbers
    (``true`` is not 1, NaN and Infinity are refused); NUL characters are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or value.lower() in _BOOL_WORDS:
            field = cls.model_fields.get(info.field_name or "")
            if field is not None:
                refuse_bool_for_number(field.annotation, value)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Ids in paths and bodies: positive and at most 2**53 - 1, the largest integer a JSON number holds exactly in
# every client (a browser, or a schema validator reading 2**62 + 95 as 2**62), and far within BIGINT.
MAX_ID = 2**53 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive integer id")]


# A file in a response's OpenAPI content (generated clients then hand back the bytes, not parsed JSON).
FILE: dict[str, str] = {"type": "string", "format": "binary"}
