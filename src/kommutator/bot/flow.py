"""Bot flows: the definition format (JSON/YAML-compatible dicts), its validation, and the parsed ``Flow``.

```
{"name": "default", "version": 1, "language_default": "ru", "languages": ["ru", "en"], "start": "greeting",
 "settings": {"crm_url": "http://crm.example"},      # {settings.crm_url} in templates; the runner may override
 "escalate": "agent",                                 # where "оператор"/"agent" goes (a handoff node, usually)
 "on_timeout": "bye",                                 # where a silent customer goes (default: resolve)
 "max_misunderstandings": 2,                          # not understood this many times in a row: hand off
 "texts": {"not_understood": {"ru": "...", "en": "..."}},   # override the built-in texts
 "nodes": {"greeting": {"type": "message", "text": {...}, "next": "main"}, ...}}
```
Node types are in ``bot/nodes/`` (one file each). ``validate_flow`` returns every problem with its location,
e.g. ``nodes.ask_order.next: no node 'lookup'``; ``Flow.parse`` refuses a definition with errors.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from pydantic import ValidationError

from kommutator.bot import nodes
from kommutator.bot.nodes.base import BUILTIN_NAMES, BUILTIN_PREFIXES, Node, Text, placeholders

DEFAULT_MAX_MISUNDERSTANDINGS = 2
_TOP = {"name", "version", "language_default", "languages", "start", "nodes", "settings", "escalate", "on_timeout",
        "max_misunderstandings", "texts", "description"}

# Texts the engine and nodes use unless the flow's "texts" overrides them.
BUILTIN_TEXTS: dict[str, Text] = {
    "not_understood": {"ru": "Извините, я не понял. Выберите, пожалуйста, один из вариантов.",
                       "en": "Sorry, I did not understand. Please choose one of the options."},
    "handoff": {"ru": "Соединяю вас с оператором, он увидит нашу переписку.",
                "en": "I am connecting you to an agent; they will see our conversation."},
    "invalid_phone": {"ru": "Не похоже на номер телефона. Напишите его полностью, например +7 916 123-45-67.",
                      "en": "That does not look like a phone number. Please write it in full, e.g. +44 20 7946 0958."},
    "invalid_email": {"ru": "Не похоже на адрес почты. Напишите его, например name@example.com.",
                      "en": "That does not look like an email address. Please write it like name@example.com."},
    "invalid_order_number": {"ru": "Не вижу номера заказа. Напишите его цифрами, например 12345.",
                             "en": "I cannot see an order number. Please write it in digits, e.g. 12345."},
    "invalid_free_text": {"ru": "Напишите, пожалуйста, ответ текстом.", "en": "Please write your answer as text."},
    "did_it_help": {"ru": "Это помогло?", "en": "Did this help?"},
    "kb_helped": {"ru": "Рад, что помог! Если появятся вопросы, пишите.",
                  "en": "Glad I could help! Write again if you have more questions."},
    "kb_not_helped": {"ru": "Жаль. Выберите вариант ниже или напишите «оператор», и я позову человека.",
                      "en": "Sorry about that. Choose an option below or write “agent” and I will call a person."},
    "verify_ask_any": {"ru": "Напишите адрес почты или номер телефона, и я пришлю на него код подтверждения.",
                       "en": "Write your email address or phone number and I will send a confirmation code to it."},
    "verify_ask_email": {"ru": "Напишите адрес почты, и я пришлю на него код подтверждения.",
                         "en": "Write your email address and I will send a confirmation code to it."},
    "verify_ask_phone": {"ru": "Напишите номер телефона полностью (+7 912 345-67-89), и я пришлю код по SMS.",
                         "en": "Write your phone number in full (+44 20 7946 0958) and I will text you a code."},
    "verify_invalid": {"ru": "Не вижу ни адреса почты, ни номера телефона в международном виде. Попробуйте ещё раз.",
                       "en": "I cannot see an email address or a phone number in international form. Try again."},
    "verify_sent": {"ru": "Отправил код на {target}. Напишите его сюда (6 цифр).",
                    "en": "I sent a code to {target}. Please type it here (6 digits)."},
    "verify_wrong": {"ru": "Код не подходит. Осталось попыток: {left}.",
                     "en": "That code is not right. Tries left: {left}."},
    "verify_expired": {"ru": "Срок действия кода истёк. Напишите адрес или номер ещё раз, и я пришлю новый.",
                       "en": "The code has expired. Write the address or number again and I will send a new one."},
    "verify_done": {"ru": "Спасибо, подтверждено: {target}.", "en": "Thank you, confirmed: {target}."},
    "verify_failed": {"ru": "Не удалось подтвердить адрес или номер.", "en": "The address or number could not be "
                                                                           "confirmed."},
    "yes": {"ru": "Да", "en": "Yes"},
    "no": {"ru": "Нет", "en": "No"},
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (a dotted path) and what; warnings do not stop a flow."""

    where: str
    message: str
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class FlowError(ValueError):
    """The definition has errors; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid bot flow: " + "; ".join(map(str, problems)))


@dataclass(frozen=True)
class Flow:
    """A validated flow, ready for ``engine.step``."""

    name: str
    version: int | str
    language_default: str
    languages: tuple[str, ...]
    start: str
    nodes: dict[str, Node]
    settings: dict[str, Any] = field(default_factory=dict)
    escalate: str | None = None
    on_timeout: str | None = None
    max_misunderstandings: int = DEFAULT_MAX_MISUNDERSTANDINGS
    texts: dict[str, Text] = field(default_factory=dict)

    @classmethod
    def parse(cls, defn: Mapping[str, Any]) -> Flow:
        """Build a flow; ``FlowError`` when ``validate_flow`` finds errors."""
        problems, parsed = _check(defn)
        errors = [p for p in problems if p.level == "error"]
        if errors:
            raise FlowError(errors)
        return cls(name=str(defn["name"]), version=defn["version"], language_default=defn["language_default"],
                   languages=tuple(_languages(defn)), start=defn["start"], nodes=parsed,
                   settings=dict(defn.get("settings") or {}), escalate=defn.get("escalate"),
                   on_timeout=defn.get("on_timeout"),
                   max_misunderstandings=int(defn.get("max_misunderstandings", DEFAULT_MAX_MISUNDERSTANDINGS)),
                   texts={**BUILTIN_TEXTS, **(defn.get("texts") or {})})


def validate_flow(defn: Any, intents: Collection[str] | None = None) -> list[Problem]:
    """Return every problem with ``defn`` (errors first, then warnings); empty when it is a good flow.

    ``intents``: the intent names flows may use (the shipped ones and the business's); an option or rule naming
    another is an error. None skips that check (a stored flow is parsed without the database at hand)."""
    problems, _ = _check(defn, intents)
    return sorted(problems, key=lambda p: p.level != "error")


def load_default() -> dict[str, Any]:
    """Return the shipped default flow definition (Russian and English)."""
    raw = (resources.files("kommutator.bot") / "flows" / "default.json").read_text("utf-8")
    defn: dict[str, Any] = json.loads(raw)
    return defn


def _languages(defn: Mapping[str, Any]) -> list[str]:
    langs = defn.get("languages") or [defn.get("language_default")]
    return [str(x) for x in langs]


def _check(defn: Any, intents: Collection[str] | None = None) -> tuple[list[Problem], dict[str, Node]]:
    problems: list[Problem] = []

    def err(where: str, message: str) -> None:
        problems.append(Problem(where, message))

    def warn(where: str, message: str) -> None:
        problems.append(Problem(where, message, "warning"))

    if not isinstance(defn, Mapping):
        return [Problem("(flow)", "a flow definition is an object with name, version, start and nodes.")], {}
    for key in sorted(set(defn) - _TOP):
        err(key, f"unknown field; a flow has {', '.join(sorted(_TOP))}.")
    for key in ("name", "version", "language_default", "start", "nodes"):
        if key not in defn:
            err(key, "required.")
    lang_default = defn.get("language_default")
    languages = _languages(defn)
    if "language_default" in defn and (not isinstance(lang_default, str) or not lang_default):
        err("language_default", "a language code such as 'ru' or 'en'.")
    elif lang_default not in languages:
        err("languages", f"must include language_default {lang_default!r}.")
    settings = defn.get("settings") or {}
    if not isinstance(settings, Mapping):
        err("settings", "must be an object of names to values.")
        settings = {}
    limit = defn.get("max_misunderstandings", DEFAULT_MAX_MISUNDERSTANDINGS)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10:
        err("max_misunderstandings", "a whole number from 1 to 10.")
    texts = defn.get("texts") or {}
    if not isinstance(texts, Mapping):
        err("texts", "must map built-in text names to texts.")
        texts = {}
    for key in texts:
        if key not in BUILTIN_TEXTS:
            err(f"texts.{key}", f"no built-in text of that name; known: {', '.join(BUILTIN_TEXTS)}.")

    raw_nodes = defn.get("nodes")
    if "nodes" in defn and (not isinstance(raw_nodes, Mapping) or not raw_nodes):
        err("nodes", "must be a non-empty object of node id to node.")
    raw_nodes = raw_nodes if isinstance(raw_nodes, Mapping) else {}
    parsed: dict[str, Node] = {}
    for node_id, raw in raw_nodes.items():
        where = f"nodes.{node_id}"
        if not isinstance(raw, Mapping) or "type" not in raw:
            err(where, "a node is an object with a \"type\".")
            continue
        try:
            kind = nodes.get(str(raw["type"]))
        except KeyError:
            err(f"{where}.type", f"unknown node type {raw['type']!r}; known: {', '.join(nodes.names())}.")
            continue
        try:
            parsed[str(node_id)] = kind.model_validate(dict(raw))
        except ValidationError as e:
            for item in e.errors():
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
                err(f"{where}{loc}", item["msg"] + ".")

    ids = set(raw_nodes)
    for key in ("start", "escalate", "on_timeout"):
        target = defn.get(key)
        if target is not None and target not in ids:
            err(key, f"no node {target!r}.")
    escalate = defn.get("escalate")
    if escalate in parsed and type(parsed[escalate]).waits:
        warn("escalate", f"node {escalate!r} waits for the customer; a request for a human should end with people.")

    assigned = set().union(*(n.assigns() for n in parsed.values())) if parsed else set()
    for node_id, node in parsed.items():
        where = f"nodes.{node_id}"
        for path, target in node.links():
            if target is not None and target not in ids:
                err(f"{where}.{path}", f"no node {target!r}.")
        for path, message in node.check():
            err(f"{where}.{path}", message)
        for path, text in node.texts():
            for lang in _missing_translations(text, languages):
                err(f"{where}.{path}", f"missing translation {lang!r}.")
            if isinstance(text, str) and len(languages) > 1 and any(ch.isalpha() for ch in text):
                warn(f"{where}.{path}", f"one text for all of {', '.join(languages)}; give one per language.")
        for path, template in node.templates():
            for name in placeholders(template):
                problem = _unknown_name(name, assigned, settings)
                if problem:
                    err(f"{where}.{path}", problem)
        for path, var in node.reads():
            if var not in assigned:
                err(f"{where}.{path}", f"no node sets var {var!r}.")
        for path, name in node.intents():
            if intents is not None and name not in intents:
                err(f"{where}.{path}", f"unknown intent {name!r}; define it under Bot → Intents or use one of "
                                       f"{', '.join(sorted(intents)[:12])}.")
    for key, text in texts.items():
        for lang in _missing_translations(text, languages):
            err(f"texts.{key}", f"missing translation {lang!r}.")

    for node_id in sorted(ids - _reachable(defn, parsed)):
        if node_id in parsed or not any(p.where.startswith(f"nodes.{node_id}") for p in problems):
            warn(f"nodes.{node_id}", f"unreachable from start {defn.get('start')!r}.")
    return problems, parsed


def _missing_translations(text: Any, languages: list[str]) -> Iterator[str]:
    if isinstance(text, Mapping):
        for lang in languages:
            if not text.get(lang):
                yield lang


def _unknown_name(name: str, assigned: set[str], settings: Mapping[str, Any]) -> str | None:
    if name.startswith("settings."):
        key = name.removeprefix("settings.")
        return None if key in settings else f"template refers to unknown setting {key!r}; add it to \"settings\"."
    if name in BUILTIN_NAMES or name.startswith(BUILTIN_PREFIXES) or name in assigned:
        return None
    return f"template refers to unknown var {name!r}."


def _reachable(defn: Mapping[str, Any], parsed: dict[str, Node]) -> set[str]:
    seen: set[str] = set()
    todo = [defn.get(k) for k in ("start", "escalate", "on_timeout")]
    while todo:
        node_id = todo.pop()
        if not isinstance(node_id, str) or node_id in seen:
            continue
        seen.add(node_id)
        node = parsed.get(node_id)
        if node is not None:
            todo.extend(target for _, target in node.links())
    return seen
