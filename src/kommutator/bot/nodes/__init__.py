"""Bot node types by name; every module in this package is discovered, so a new node type is a new file.

A node type is a ``base.Node`` subclass decorated with ``@register``; its ``kind`` is the ``type`` a flow
definition uses (``{"type": "menu", ...}``).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from kommutator.bot.nodes.base import Node

_N = TypeVar("_N", bound=type[Node])
_types: dict[str, type[Node]] = {}
_discovered = False


def register(cls: _N) -> _N:
    """Class decorator: make a node type available under ``cls.kind``."""
    if cls.kind in _types and _types[cls.kind] is not cls:
        raise RuntimeError(f"bot node type {cls.kind!r} registered twice")
    _types[cls.kind] = cls
    return cls


def discover() -> None:
    """Import every module of this package once so that their @register runs."""
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")
    _discovered = True


def get(kind: str) -> type[Node]:
    """Return the node type called ``kind``; KeyError naming the known ones otherwise."""
    discover()
    try:
        return _types[kind]
    except KeyError:
        raise KeyError(f"unknown node type {kind!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    discover()
    return sorted(_types)
