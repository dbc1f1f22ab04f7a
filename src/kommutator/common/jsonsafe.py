"""Read JSON and YAML from outside safely: bounded depth and size, finite numbers, JSON types only.

Every place where JSON or YAML enters (API bodies, webhooks, bot flows, socket frames, answers of CRMs and
providers) reads it through ``loads_json`` / ``loads_yaml`` or checks a parsed value with ``check_tree``, so
a body nested 50,000 levels deep is a 400 instead of a RecursionError, and NaN is refused instead of being
stored as null.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

from kommutator.errors import ProblemError

MAX_DEPTH = 32  # real payloads (provider webhooks, flows, CRM answers) nest under 12 levels
MAX_NODES = 200_000  # values in one document, counted with YAML aliases expanded ("billion laughs")


class UnsafeInput(ProblemError, ValueError):
    """Input that is not JSON we accept; a ValueError too, so parsers' existing error paths catch it."""


def _too_deep(where: str) -> UnsafeInput:
    return UnsafeInput(400, "too_deep", f"{where}: nested more than {MAX_DEPTH} levels deep; send a flatter document.")


def _path(where: str, parts: tuple[str | int, ...]) -> str:
    return ".".join([where, *(str(p) for p in parts)]) if where else ".".join(str(p) for p in parts) or "body"


def check_tree(value: Any, *, where: str = "") -> Any:
    """Return ``value`` if it is a JSON tree within the limits; raise ``UnsafeInput`` (400 or 422) if not.

    Walks without recursion, so a deep value cannot exhaust the stack here. ``where`` prefixes the field
    names in messages ("definition" gives "definition.nodes.start").
    """
    label = where or "body"
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    seen = 0
    while stack:
        item, parts = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise UnsafeInput(413, "too_large", f"{label}: more than {MAX_NODES} values; send a smaller document.")
        if len(parts) > MAX_DEPTH:
            raise _too_deep(label)
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise UnsafeInput(422, "validation_failed", f"{_path(where, parts)}: keys must be strings.",
                                      errors=[{"field": _path(where, parts), "message": "keys must be strings"}])
                stack.append((child, (*parts, key)))
        elif isinstance(item, list):
            stack.extend((child, (*parts, i)) for i, child in enumerate(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                field = _path(where, parts)
                raise UnsafeInput(422, "validation_failed",
                                  f"{field}: NaN and Infinity are not numbers JSON allows; send a finite number.",
                                  errors=[{"field": field, "message": "must be a finite number"}])
        elif not (item is None or isinstance(item, str | int)):  # bool is an int
            field = _path(where, parts)
            raise UnsafeInput(422, "validation_failed",
                              f"{field}: a {type(item).__name__} is not a JSON value; use a string, number, "
                              "boolean, null, list or object.",
                              errors=[{"field": field, "message": f"{type(item).__name__} is not a JSON value"}])
    return value


def loads_json(raw: bytes | str, *, where: str = "") -> Any:
    """Parse JSON text and ``check_tree`` it; 400 ``invalid_json`` or ``too_deep``, 422 for NaN/Infinity."""
    label = where or "body"
    try:
        value = json.loads(raw)
    except RecursionError:  # the C parser gives up at the interpreter's recursion limit, cleanly
        raise _too_deep(label) from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
        raise UnsafeInput(400, "invalid_json", f"{label}: not valid JSON ({reason}).") from exc
    return check_tree(value, where=where)


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a bound on nesting (its composer recurses per level) and timestamps left
    as text (JSON has no dates; a flow's "2024-05-01" stays the string the author wrote)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _TooDeepYaml
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _TooDeepYaml(Exception):
    pass


def loads_yaml(text: str, *, where: str = "") -> Any:
    """Parse YAML and ``check_tree`` it; ``yaml.YAMLError`` for bad syntax (callers word it), ``UnsafeInput``
    when too deep, too large, or holding values JSON cannot carry (NaN, dates by tag, binary, sets)."""
    try:
        value = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass
    except (_TooDeepYaml, RecursionError):
        raise _too_deep(where or "body") from None
    return check_tree(value, where=where)
