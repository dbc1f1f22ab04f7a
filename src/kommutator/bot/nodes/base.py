"""What node types share: localised texts and templates, the runner's state, events in, actions out.

A node type is a pydantic model (its definition in a flow) with two behaviours: ``enter`` (the flow arrives at
it) and ``receive`` (input arrives while the flow waits at it). Both return an ``Outcome``: actions to take,
the node to go to next, or "wait here". Nodes never do I/O: an HTTP call or a hand-off is an action that the
caller carries out, so the runner stays a pure function that tests can drive step by step.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

# A customer-facing text: one string for every language, or one per language code.
Text = str | dict[str, str]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")
# Names every template may use without a node setting them first.
BUILTIN_PREFIXES = ("contact.", "channel.", "settings.")
BUILTIN_NAMES = frozenset({"language", "last_text"})


def placeholders(template: str) -> list[str]:
    """Return the names a template refers to, e.g. ``["settings.crm_url", "order_number"]``."""
    return _PLACEHOLDER.findall(template)


def render(template: str, values: Mapping[str, Any], *, url: bool = False) -> str:
    """Fill ``{name}`` placeholders; unknown names become empty. In a URL, values are percent-encoded
    (except ``settings.*``, which hold base URLs) so that a customer's answer cannot change the path."""

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        value = values.get(name)
        text = "" if value is None else str(value)
        return quote(text, safe="") if url and not name.startswith("settings.") else text

    return _PLACEHOLDER.sub(one, template)


def render_any(value: Any, values: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON-like body."""
    if isinstance(value, str):
        return render(value, values)
    if isinstance(value, dict):
        return {k: render_any(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_any(v, values) for v in value]
    return value


def pick(text: Text, language: str, default_language: str) -> str:
    """Return the text in ``language``, else the flow's default language, else any translation."""
    if isinstance(text, str):
        return text
    return text.get(language) or text.get(default_language) or next(iter(text.values()), "")


# --- events -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Start:
    """A new conversation: greet the customer."""


@dataclass(frozen=True)
class Timeout:
    """The customer did not answer in time."""


@dataclass(frozen=True)
class CustomerMessage:
    """What the customer wrote; ``button`` is the id of the button they pressed, if any."""

    text: str = ""
    button: str | None = None


@dataclass(frozen=True)
class HttpResult:
    """The outcome of a ``CallHttp``: the status and parsed JSON body, or ``error`` (timeout, refused, ...)."""

    node: str
    status: int | None = None
    body: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.status is not None and 200 <= self.status < 300


Event = Start | Timeout | CustomerMessage | HttpResult


# --- actions ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendText:
    """Send ``text`` with optional ``(id, label)`` buttons (channels without buttons get numbered lines)."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallHttp:
    """Make an HTTP request and feed the result back as ``HttpResult(node=...)``."""

    node: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    timeout: float = 5.0


@dataclass(frozen=True)
class SetAttribute:
    """Store ``value`` as the contact's attribute ``name``."""

    name: str
    value: Any


@dataclass(frozen=True)
class Handoff:
    """Pass the conversation to people: a queue (name or id) and skills, or the personal manager."""

    queue: str | int | None = None
    skills: tuple[str, ...] = ()
    priority: int | None = None
    personal_manager: bool = False
    summary: str = ""
    reason: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    asked: tuple[str, ...] = ()  # the customer's own words, oldest first
    chose: tuple[str, ...] = ()  # the menu options they chose, as they saw them


@dataclass(frozen=True)
class Resolve:
    """The bot served the customer; close the conversation."""

    reason: str = ""
    summary: str = ""


@dataclass(frozen=True)
class SendCode:
    """Send the one-time ``code`` to ``value`` (an address, or a phone in E.164) through its channel type, after
    the step commits (outbound/proofs.py keeps only ``code_hash``)."""

    node: str
    kind: Literal["email", "phone"]
    value: str
    code: str
    code_hash: str
    language: str = "en"


@dataclass(frozen=True)
class CodeTyped:
    """The customer typed a code for the proof whose hash is ``code_hash``; ``matches``: it is the right one (the
    node compared it while computing, outside any transaction). Counted; the right code links the value."""

    node: str
    code_hash: str
    matches: bool


Action = SendText | CallHttp | SetAttribute | Handoff | Resolve | SendCode | CodeTyped


# --- state --------------------------------------------------------------------------------------------------

Status = Literal["new", "waiting", "http", "handoff", "resolved"]
FINISHED: frozenset[str] = frozenset({"handoff", "resolved"})


@dataclass
class State:
    """Where a conversation is in its flow; JSON-serialisable through ``to_dict``/``from_dict``."""

    node: str | None = None
    status: Status = "new"
    language: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # set by the flow, on top of the contact's
    retries: int = 0  # failed answers at the current node
    misunderstood: int = 0  # inputs not understood in a row, anywhere
    trail: list[str] = field(default_factory=list)  # what happened, in words, for the hand-off summary
    escalation: str = ""  # why the engine is handing off (overrides a handoff node's own reason)
    last_text: str = ""  # the customer's latest message ({last_text} in templates)
    # the first message chose a menu option: a question entered in the same step may find its answer in it
    # ("где мой заказ 12345" → the order number); cleared when the bot waits
    carry: str = ""
    kb_offer: str = ""  # a menu node that answered a typed question from the knowledge base and asked "did it help?"
    # What the customer wrote in their own words (not button presses), for the hand-off summary.
    asked: list[str] = field(default_factory=list)
    # Intents recognised in the input of the step being computed (the model's answer in ``Ctx.classify``, the intent
    # of a menu option the message chose): bot/apply.py moves them to the session's history and announces them
    # (``IntentHeard``) once the step is applied.
    heard: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "status": self.status, "language": self.language, "vars": dict(self.vars),
                "attributes": dict(self.attributes), "retries": self.retries, "misunderstood": self.misunderstood,
                "trail": list(self.trail), "escalation": self.escalation, "last_text": self.last_text,
                "carry": self.carry, "kb_offer": self.kb_offer, "asked": list(self.asked),
                "heard": list(self.heard)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> State:
        return cls(node=data.get("node"), status=data.get("status", "new"), language=data.get("language", ""),
                   vars=dict(data.get("vars", {})), attributes=dict(data.get("attributes", {})),
                   retries=int(data.get("retries", 0)), misunderstood=int(data.get("misunderstood", 0)),
                   trail=list(data.get("trail", [])), escalation=str(data.get("escalation", "")),
                   last_text=str(data.get("last_text", "")), carry=str(data.get("carry", "")),
                   kb_offer=str(data.get("kb_offer", "")), asked=[str(a) for a in data.get("asked", [])],
                   heard=[str(a) for a in data.get("heard", [])])

    def copy(self) -> State:
        return State.from_dict(self.to_dict())


@dataclass(frozen=True)
class KbHit:
    """One knowledge-base answer found for a query; ``score`` (0–1): the share of the query's words the
    article has (a typed question is answered only from a confident hit)."""

    title: str
    text: str
    url: str = ""
    score: float = 1.0


Search = Callable[[str, str], Sequence[KbHit]]  # (query, language) -> best answers first


@dataclass(frozen=True)
class Env:
    """What the runner knows about the conversation but does not own: the contact, the channel, the time."""

    contact: Mapping[str, Any] = field(default_factory=dict)  # attributes, plus name/email/phone if known
    channel_type: str = ""
    language: str | None = None
    now: dt.datetime | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # override the flow's settings (e.g. crm_url)
    search: Search | None = None  # the knowledge base, for kb_answer nodes and answers to typed questions
    # language -> the trained intent model (None while none is loaded: intents are then not used); when the
    # Env has no provider at all (a library caller, tests), the shipped default model is used
    intents: Callable[[str], Any] | None = None


@dataclass
class Ctx:
    """What a node sees while it runs: the state (mutable), the environment, the flow's defaults."""

    node_id: str
    state: State
    env: Env
    language_default: str
    settings: Mapping[str, Any]
    builtin_texts: Mapping[str, Text]

    def values(self) -> dict[str, Any]:
        """Return everything templates may refer to."""
        out: dict[str, Any] = {f"settings.{k}": v for k, v in self.settings.items()}
        out.update({f"contact.{k}": v for k, v in {**self.env.contact, **self.state.attributes}.items()})
        out["channel.type"] = self.env.channel_type
        out["language"] = self.state.language
        out["last_text"] = self.state.last_text
        out.update(self.state.vars)
        return out

    def say(self, text: Text) -> str:
        return render(pick(text, self.state.language, self.language_default), self.values())

    def builtin(self, key: str) -> str:
        return self.say(self.builtin_texts[key])

    def note(self, line: str) -> None:
        self.state.trail.append(line)

    def intent_model(self) -> Any:
        """The intent model for the conversation's language, or None when none is loaded."""
        language: Literal["ru", "en"] = "ru" if self.state.language == "ru" else "en"
        if self.env.intents is not None:
            return self.env.intents(language)
        from kommutator.bot.nlu import default_model

        return default_model(language)

    def classify(self, text: str, threshold: float | None = None) -> tuple[str | None, float]:
        """The intent of ``text`` (None below ``threshold``, default the model's calibrated one) and the
        confidence; (None, 0) without a model or text."""
        if not text.strip():
            return None, 0.0
        model = self.intent_model()
        if model is None:
            return None, 0.0
        prediction = model.predict(text, threshold=threshold)
        if prediction.intent:
            self.hear(prediction.intent)
        return prediction.intent, prediction.confidence

    def hear(self, intent: str) -> None:
        """Note that the customer's message expressed ``intent`` (for the bot report's top intents)."""
        if intent not in self.state.heard:
            self.state.heard.append(intent)


@dataclass
class Outcome:
    """What a node decided: actions, then go to ``goto``, or wait for input (``wait``), or stop (``finish``).

    ``understood=False`` marks input the node could not use; the engine counts those in a row and hands off
    after the flow's limit unless ``retrying`` says the node still has retries of its own."""

    actions: list[Action] = field(default_factory=list)
    goto: str | None = None
    wait: bool = False
    finish: Literal["handoff", "resolved"] | None = None
    understood: bool = True
    retrying: bool = False


# --- the node interface -------------------------------------------------------------------------------------

class Node(BaseModel):
    """A node type: subclass, set ``type`` to a Literal of its name, decorate with ``nodes.register``."""

    model_config = ConfigDict(extra="forbid")
    kind: ClassVar[str]
    waits: ClassVar[bool] = False  # True when the node may wait for the customer

    def enter(self, ctx: Ctx) -> Outcome:
        """Run when the flow arrives at this node."""
        raise NotImplementedError

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        """Run when input arrives while the flow waits here."""
        return Outcome(understood=False, wait=True)

    def links(self) -> Iterator[tuple[str, str | None]]:
        """Yield ``(field path, node id)`` for every node this one may go to (None: not set)."""
        return iter(())

    def texts(self) -> Iterator[tuple[str, Text]]:
        """Yield ``(field path, text)`` for every customer-facing text (checked for translations)."""
        return iter(())

    def templates(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field path, template)`` for every template (checked for unknown names)."""
        for where, text in self.texts():
            if isinstance(text, str):
                yield where, text
            else:
                for lang, t in text.items():
                    yield f"{where}.{lang}", t

    def assigns(self) -> set[str]:
        """Return the variables this node sets."""
        return set()

    def reads(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field path, var)`` for collected vars read outside templates."""
        return iter(())

    def check(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field path, message)`` for problems only this node type knows about."""
        return iter(())

    def intents(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field path, intent name)`` for every intent the node uses (checked against the known ones)."""
        return iter(())


_NODE_PREFIX = re.compile(r"^[\w.-]+: ")
_CHOSE = re.compile(r"chose \u00ab(.*)\u00bb$")


def chosen(trail: Sequence[str]) -> list[str]:
    """The menu options chosen, as the customer saw them, from the trail."""
    return [m.group(1) for line in trail if (m := _CHOSE.search(line))]


def summary(ctx: Ctx, reason: str) -> str:
    """Say in a few lines what the customer asked and what the bot learned, so the agent does not ask again
    (the flow's step names stay out: the agent never saw them)."""
    lines = []
    if ctx.state.asked:
        lines.append("The customer asked: " + " / ".join(f"\u00ab{a}\u00bb" for a in ctx.state.asked))
    chose = chosen(ctx.state.trail)
    if chose:
        lines.append("Chose: " + " \u2192 ".join(chose) + ".")
    collected = {k: v for k, v in ctx.state.vars.items() if not k.startswith(("http_", "_"))}
    if collected:
        lines.append("Collected: " + ", ".join(f"{k} = {v}" for k, v in collected.items()) + ".")
    other = [_NODE_PREFIX.sub("", line) for line in ctx.state.trail if not _CHOSE.search(line)]
    if other:
        lines.append("Also: " + "; ".join(other) + ".")
    lines.append(f"Handed off by the bot: {reason}.")
    return "\n".join(lines)


def handoff(ctx: Ctx, reason: str, *, queue: str | int | None = None, skills: Sequence[str] = (),
            priority: int | None = None, personal_manager: bool = False) -> Handoff:
    """Build the hand-off action with its summary."""
    return Handoff(queue=queue, skills=tuple(skills), priority=priority, personal_manager=personal_manager,
                   summary=summary(ctx, reason), reason=reason, vars=dict(ctx.state.vars),
                   asked=tuple(ctx.state.asked), chose=tuple(chosen(ctx.state.trail)))
