"""Bot node types by name; a new node type is a file in this package and one line in ``discover``.

A node type is a ``base.Node`` subclass; its ``kind`` is the ``type`` a flow
definition uses (``{"type": "menu", ...}``).
"""

from __future__ import annotations

from typing import TypeVar

from kommutator.bot.nodes.base import Node

_N = TypeVar("_N", bound=type[Node])
_types: dict[str, type[Node]] = {}
_discovered = False


def register(cls: _N) -> _N:
    """Make a node type available under ``cls.kind``."""
    if cls.kind in _types and _types[cls.kind] is not cls:
        raise RuntimeError(f"bot node type {cls.kind!r} registered twice")
    _types[cls.kind] = cls
    return cls


def discover() -> None:
    """Register every node type listed here, once (bot/setup.py calls it at start; look-ups call it too, for
    code that runs without an app). A new node type is a file in this package and one line below."""
    global _discovered
    if _discovered:
        return
    from kommutator.bot.nodes.condition import ConditionNode
    from kommutator.bot.nodes.handoff import HandoffNode
    from kommutator.bot.nodes.http_action import HttpActionNode
    from kommutator.bot.nodes.kb_answer import KbAnswerNode
    from kommutator.bot.nodes.menu import MenuNode
    from kommutator.bot.nodes.message import MessageNode
    from kommutator.bot.nodes.question import QuestionNode
    from kommutator.bot.nodes.resolve import ResolveNode
    from kommutator.bot.nodes.set_attribute import SetAttributeNode
    from kommutator.bot.nodes.verify_identity import VerifyIdentityNode

    for node in (ConditionNode, HandoffNode, HttpActionNode, KbAnswerNode, MenuNode, MessageNode, QuestionNode,
                 ResolveNode, SetAttributeNode, VerifyIdentityNode):
        register(node)
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
