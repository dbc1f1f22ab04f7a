"""``question``: ask, check the answer (phone, email, order number or free text), store it in ``var``.

A wrong answer is asked again up to ``retries`` times, then the flow goes to ``on_fail`` (or hands off)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from kommutator.bot.nodes.base import (
    Ctx,
    CustomerMessage,
    HttpResult,
    Node,
    Outcome,
    SendText,
    Text,
    handoff,
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{8,20}\d")
_ORDER = re.compile(r"(?<![\w-])[A-Za-z]{0,4}-?\d[\d-]{2,19}(?![\w-])")
_VAR = r"^[A-Za-z_]\w*$"


def extract(kind: str, text: str) -> str | None:
    """Return the normalised value of the kind found in ``text``, or None."""
    text = text.strip()[:1000]
    if kind == "free_text":
        return text or None
    if kind == "email":
        m = _EMAIL.search(text)
        return m.group(0).lower() if m else None
    if kind == "phone":
        m = _PHONE.search(text)
        if not m:
            return None
        digits = re.sub(r"\D", "", m.group(0))
        if not 10 <= len(digits) <= 15:
            return None
        if len(digits) == 11 and digits[0] == "8":  # Russian trunk prefix: 8 916 ... is +7 916 ...
            digits = "7" + digits[1:]
        return "+" + digits
    m = _ORDER.search(text)  # order_number
    return m.group(0).upper() if m else None


class QuestionNode(Node):
    kind: ClassVar[str] = "question"
    waits: ClassVar[bool] = True
    type: Literal["question"]
    prompt: Text
    validate_as: Literal["phone", "email", "order_number", "free_text"] = Field("free_text", alias="validate")
    var: str = Field(pattern=_VAR)
    retries: int = Field(2, ge=0, le=5)
    retry_text: Text | None = None
    next: str
    on_fail: str | None = None

    def enter(self, ctx: Ctx) -> Outcome:
        carried, ctx.state.carry = ctx.state.carry, ""
        if carried and self.validate_as != "free_text" and (value := extract(self.validate_as, carried)):
            ctx.state.vars[self.var] = value  # the first message already said it: "где мой заказ 12345"
            ctx.note(f"{ctx.node_id}: {self.var} taken from the first message")
            return Outcome(goto=self.next)
        return Outcome([SendText(ctx.say(self.prompt))], wait=True)

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        if not isinstance(event, CustomerMessage):
            return Outcome(wait=True)
        value = extract(self.validate_as, event.text)
        if value is not None:
            ctx.state.vars[self.var] = value
            return Outcome(goto=self.next)
        ctx.state.retries += 1
        if ctx.state.retries <= self.retries:
            again = ctx.say(self.retry_text) if self.retry_text else ctx.builtin(f"invalid_{self.validate_as}")
            return Outcome([SendText(again)], wait=True, understood=False, retrying=True)
        ctx.note(f"{ctx.node_id}: no valid {self.validate_as.replace('_', ' ')} after {ctx.state.retries} tries")
        if self.on_fail:
            return Outcome(goto=self.on_fail, understood=False)
        reason = f"the customer's answer to {ctx.node_id} was not a valid {self.validate_as.replace('_', ' ')}"
        return Outcome([SendText(ctx.builtin("handoff")), handoff(ctx, reason)], finish="handoff", understood=False)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "next", self.next
        if self.on_fail is not None:
            yield "on_fail", self.on_fail

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "prompt", self.prompt
        if self.retry_text is not None:
            yield "retry_text", self.retry_text

    def assigns(self) -> set[str]:
        return {self.var}
