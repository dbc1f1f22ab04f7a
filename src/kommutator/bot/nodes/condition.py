"""``condition``: branch on collected vars, contact attributes, the channel type or business hours.

``{"type": "condition", "branches": [{"when": [rule, ...], "next": "vip"}], "else": "normal"}``; the first
branch whose rules all hold wins. A rule tests exactly one subject:
``{"var": "order_status", "op": "eq", "value": "shipped"}``, ``{"attribute": "vip", "op": "eq", "value": true}``,
``{"channel": ["telegram", "vk"]}`` (the channel type is one of these), ``{"business_hours": {...}}``
(open now, in ``common.hours`` format) or ``{"intent": "refund", "min_confidence": 0.5}`` (the customer's latest
message is about that intent; without ``min_confidence``, at the model's calibrated threshold);
``"negate": true`` inverts any rule.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kommutator.bot.nodes.base import Ctx, Node, Outcome
from kommutator.common import hours

Op = Literal["eq", "ne", "in", "contains", "exists", "gt", "lt", "matches"]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    var: str | None = None
    attribute: str | None = None
    channel: list[str] | None = None
    business_hours: dict[str, Any] | None = None
    intent: str | None = None  # the customer's latest message is about this intent
    min_confidence: float | None = Field(None, ge=0.0, le=1.0)  # for ``intent``; None: the model's threshold
    op: Op = "eq"
    value: Any = None
    negate: bool = False

    @model_validator(mode="after")
    def _one_subject(self) -> Rule:
        given = [k for k in ("var", "attribute", "channel", "business_hours", "intent") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a rule tests exactly one of var, attribute, channel, business_hours, intent")
        return self

    def holds(self, ctx: Ctx) -> bool:
        if self.channel is not None:
            result = ctx.env.channel_type in self.channel
        elif self.business_hours is not None:
            result = hours.is_open(self.business_hours, ctx.env.now or dt.datetime.now(dt.UTC))
        elif self.intent is not None:
            result = ctx.classify(ctx.state.last_text, self.min_confidence)[0] == self.intent
        elif self.var is not None:
            result = _compare(ctx.state.vars.get(self.var), self.op, self.value)
        else:
            attrs = {**ctx.env.contact, **ctx.state.attributes}
            result = _compare(attrs.get(str(self.attribute)), self.op, self.value)
        return result != self.negate


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return actual not in (None, "")
    if actual is None:
        return op == "ne" and expected is not None
    try:
        if op == "eq":
            return bool(actual == expected or str(actual) == str(expected))
        if op == "ne":
            return not (actual == expected or str(actual) == str(expected))
        if op == "in":
            return isinstance(expected, list) and (actual in expected or str(actual) in map(str, expected))
        if op == "contains":
            return str(expected).casefold() in str(actual).casefold()
        if op == "matches":
            return re.search(str(expected), str(actual)[:1000]) is not None
        a, b = float(actual), float(expected)
        return a > b if op == "gt" else a < b
    except (TypeError, ValueError, re.error):
        return False


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: list[Rule] = Field(min_length=1)
    next: str


class ConditionNode(Node):
    kind: ClassVar[str] = "condition"
    type: Literal["condition"]
    branches: list[Branch]
    else_: str = Field(alias="else")

    def enter(self, ctx: Ctx) -> Outcome:
        for branch in self.branches:
            if all(rule.holds(ctx) for rule in branch.when):
                return Outcome(goto=branch.next)
        return Outcome(goto=self.else_)

    def links(self) -> Iterator[tuple[str, str | None]]:
        for i, b in enumerate(self.branches):
            yield f"branches[{i}].next", b.next
        yield "else", self.else_

    def check(self) -> Iterator[tuple[str, str]]:
        for i, b in enumerate(self.branches):
            for j, rule in enumerate(b.when):
                where = f"branches[{i}].when[{j}]"
                if rule.business_hours is not None:
                    for problem in hours.validate(rule.business_hours):
                        yield where, problem
                if rule.op == "matches":
                    try:
                        re.compile(str(rule.value))
                    except re.error as e:
                        yield f"{where}.value", f"not a regular expression: {e}."

    def intents(self) -> Iterator[tuple[str, str]]:
        for i, b in enumerate(self.branches):
            for j, rule in enumerate(b.when):
                if rule.intent is not None:
                    yield f"branches[{i}].when[{j}].intent", rule.intent

    def reads(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field path, var)`` for every collected var a rule reads."""
        for i, b in enumerate(self.branches):
            for j, rule in enumerate(b.when):
                if rule.var is not None:
                    yield f"branches[{i}].when[{j}].var", rule.var
