"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel

from kommutator.errors import ProblemError


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise ProblemError(400, "invalid_cursor", "The cursor is not one this API returned; start without it.") \
            from exc
    if not isinstance(values, list) or len(values) != arity:
        raise ProblemError(400, "invalid_cursor", "The cursor is not one this API returned; start without it.")
    return values


class Page(BaseModel):
    next_cursor: str | None = None
