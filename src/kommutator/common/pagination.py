"""Opaque, typed cursors for keyset pagination.

A cursor is the base64 of a JSON list whose values have fixed types (an id; a time and an id). Decoding checks
each value against its type, so a cursor a client made up is a 400 ``invalid_cursor``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel

from kommutator.common.schemas import MAX_ID
from kommutator.errors import ProblemError

CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


def _invalid() -> ProblemError:
    return ProblemError(400, "invalid_cursor", "The cursor is not one this API returned; start without it.")


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _values(cursor: str, arity: int) -> list[Any]:
    if len(cursor) > 200:
        raise _invalid()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise _invalid() from None
    if not isinstance(values, list) or len(values) != arity:
        raise _invalid()
    return values


def _id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise _invalid()
    return value


def encode_id_cursor(ident: int) -> str:
    return encode_cursor([ident])


def decode_id_cursor(cursor: str) -> int:
    """The id a cursor of ``encode_id_cursor`` carries; 400 ``invalid_cursor`` for anything else."""
    (ident,) = _values(cursor, 1)
    return _id(ident)


def encode_time_id_cursor(at: dt.datetime, ident: int) -> str:
    return encode_cursor([at.isoformat(), ident])


def decode_time_id_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The (time, id) a cursor of ``encode_time_id_cursor`` carries; 400 ``invalid_cursor`` for anything else."""
    at_raw, ident = _values(cursor, 2)
    if not isinstance(at_raw, str) or len(at_raw) > 40:
        raise _invalid()
    try:
        at = dt.datetime.fromisoformat(at_raw)
    except ValueError:
        raise _invalid() from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at, _id(ident)


class Page(BaseModel):
    next_cursor: str | None = None
