"""The shape of the code, read from its source with ``ast``: who may import whom, who may change a conversation."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "kommutator"
LIFECYCLE = "conversations/lifecycle.py"
# Built only by the lifecycle: the events and timeline rows that record a conversation's changes.
LIFECYCLE_BUILDS = {"ConversationUpdated", "ConversationCreated", "Transition"}
# Written only by the lifecycle (on a conversation object, or in a Core statement on the conversations table).
LIFECYCLE_FIELDS = {"status", "assignee_id"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def _names(node: ast.expr) -> str:
    return ast.unparse(node).lower()


def lifecycle_writes(tree: ast.Module) -> list[str]:
    """Places in ``tree`` that change a conversation's status or assignee or build its change events."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in LIFECYCLE_BUILDS:
                found.append(f"line {node.lineno}: builds {name}")
            words = {kw.arg for kw in node.keywords} | {
                k.value for a in node.args if isinstance(a, ast.Dict) for k in a.keys if isinstance(k, ast.Constant)}
            if name in ("values", "Conversation") and words & LIFECYCLE_FIELDS and "conversation" in _names(func):
                found.append(f"line {node.lineno}: writes {sorted(words & LIFECYCLE_FIELDS)} of a conversation")
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for t in ast.walk(target):
                if (isinstance(t, ast.Attribute) and t.attr in LIFECYCLE_FIELDS
                        and "conv" in _names(t.value)):
                    found.append(f"line {t.lineno}: assigns {ast.unparse(t)}")
    return found


def test_only_the_lifecycle_changes_a_conversations_status_or_assignee() -> None:
    offenders = {name: where for name, tree in modules() if name != LIFECYCLE
                 and (where := lifecycle_writes(tree))}
    assert not offenders, (
        "Only conversations/lifecycle.py changes a conversation's status or assignee and builds "
        "ConversationUpdated / ConversationCreated / Transition; call lifecycle.move/wake/announce/… and "
        f"lifecycle.apply (ORM) or lifecycle.apply_core (Core) instead: {offenders}")


def test_the_lifecycle_check_sees_a_direct_write() -> None:
    """The check above is not vacuous: each kind of write it forbids is found."""
    src = ("conv.status = 'queued'\n"
           "conv.assignee_id, conv.updated_at = None, ts\n"
           "tx.publish(ConversationUpdated(conversation_id=1))\n"
           "tx.session.add(Transition(conversation_id=1))\n"
           "conn.execute(_conversations.update().values(status='queued'))\n")
    assert len(lifecycle_writes(ast.parse(src))) == 5
    assert lifecycle_writes(ast.parse("session.status = 'active'\nclock.status = 'hit'\n")) == []


CORE = ("db", "events", "ingest", "conversations", "contacts")
ABOVE_CORE = ("channels", "web", "bot", "routing", "quality")
ABOVE_ADAPTERS = ("bot", "routing")


def imports(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """The kommutator modules ``tree`` imports (line, dotted name), relative imports resolved in ``package``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if base == "kommutator"]
    return [(line, name) for line, name in found if name.startswith("kommutator.")]


def layer_violations(name: str, tree: ast.Module) -> list[str]:
    parts = name.removesuffix(".py").split("/")
    top = parts[0]
    if top in CORE:
        forbidden = ABOVE_CORE
    elif name.startswith("channels/types/"):
        forbidden = ABOVE_ADAPTERS
    else:
        return []
    package = "kommutator." + ".".join(parts[:-1] if parts[-1] != "__init__" else parts)
    return [f"line {line}: imports {mod}" for line, mod in imports(tree, package.rstrip("."))
            if mod.split(".")[1] in forbidden]


def test_the_core_does_not_import_the_layers_above_it() -> None:
    offenders = {name: where for name, tree in modules() if (where := layer_violations(name, tree))}
    assert not offenders, (
        "The core (db, events, ingest, conversations, contacts) must not import channels, web, bot, routing or "
        "quality, and a channel adapter (channels/types/*) must not import bot or routing: register a hook "
        "(conversations/hooks.py, contacts/card.py, a domain's setup.register_all()) or move the shared piece "
        f"into the core: {offenders}")


def test_the_layer_check_sees_an_import_up() -> None:
    up = ast.parse("from kommutator.bot import inbound\nimport kommutator.quality.queries\n"
                   "from kommutator import routing\nfrom ..channels.base import X\n")
    assert len(layer_violations("conversations/inbound.py", up)) == 4
    assert len(layer_violations("channels/types/api/__init__.py", ast.parse("from kommutator.bot import x\n"))) == 1
    assert layer_violations("bot/worker.py", up) == []


def test_importing_every_module_registers_nothing() -> None:
    """Registries fill only when app.py calls each domain's register_all(), never as a side effect of an import."""
    script = """
import importlib, pkgutil
import kommutator
for info in pkgutil.walk_packages(kommutator.__path__, "kommutator."):
    if ".migrations" not in info.name and not info.name.startswith("kommutator.demo"):
        importlib.import_module(info.name)
from kommutator.bot import nodes
from kommutator.channels import registry
from kommutator.contacts import card
from kommutator.conversations import hooks
from kommutator.ingest import actions
from kommutator.routing import strategies
from kommutator.workers import timers
from kommutator.reports import metrics
filled = {name: sorted(found) for name, found in {
    "node types": nodes._types, "channel types": registry._adapters, "strategies": strategies._strategies,
    "timer handlers": timers._handlers, "card sections": card.sections, "file fetchers": actions.file_fetchers,
    "intake openers": hooks.intake.openers, "intake finders": hooks.intake.finders,
    "intake absorbers": hooks.intake.absorbers, "intake wakers": hooks.intake.wakers,
    "report metrics": metrics._metrics}.items() if found}
assert not filled, filled
from kommutator.app import register_all
register_all()
assert nodes._types and registry._adapters and strategies._strategies and timers._handlers and hooks.intake.openers
assert metrics._metrics
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"importing a module filled a registry; register it in a setup.register_all():\n" \
                                 f"{done.stderr[-2000:]}"
