"""``verify_identity``: the customer proves an email address or phone number with a one-time code.

Asks for the value, sends a six-digit code to it (``SendCode``: email through the email channel, a phone by SMS;
sent after the step commits, outbound/proofs.py), and checks the code typed back against its hash, with a limit
of tries and an expiry. The right code links the value to the contact (``CodeTyped``, checked again against the
stored proof) and the flow goes to ``next``; too many wrong codes or sends go to ``on_fail`` (or hand off)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from kommutator.bot.nodes.base import (
    CodeTyped,
    Ctx,
    CustomerMessage,
    HttpResult,
    Node,
    Outcome,
    SendCode,
    SendText,
    Text,
    handoff,
    pick,
    render,
)
from kommutator.bot.nodes.question import extract
from kommutator.contacts.codes import CODE_TTL, MAX_ATTEMPTS, code_matches, hash_code, mask, new_code, normal_value

_CODE = re.compile(r"^\s*\d{3}[\s-]?\d{3}\s*$")
_VAR = r"^[A-Za-z_]\w*$"
PENDING = "_verify"  # the state var holding the code sent (its hash), hidden from summaries


class VerifyIdentityNode(Node):
    kind: ClassVar[str] = "verify_identity"
    waits: ClassVar[bool] = True
    type: Literal["verify_identity"]
    accept: Literal["email", "phone", "any"] = "any"
    prompt: Text | None = None
    var: str = Field("verified_value", pattern=_VAR)
    max_attempts: int = Field(MAX_ATTEMPTS, ge=1, le=MAX_ATTEMPTS)
    max_sends: int = Field(3, ge=1, le=5)
    retries: int = Field(2, ge=0, le=5)
    next: str
    on_fail: str | None = None

    def _say(self, ctx: Ctx, key: str, **extra: Any) -> str:
        return render(pick(ctx.builtin_texts[key], ctx.state.language, ctx.language_default),
                      {**ctx.values(), **extra})

    def enter(self, ctx: Ctx) -> Outcome:
        ctx.state.vars.pop(PENDING, None)
        ctx.state.vars[f"{PENDING}_sends"] = 0
        prompt = ctx.say(self.prompt) if self.prompt else self._say(ctx, f"verify_ask_{self.accept}")
        return Outcome([SendText(prompt)], wait=True)

    def _value(self, text: str) -> tuple[Literal["email", "phone"], str] | None:
        kinds: tuple[Literal["email", "phone"], ...] = ("email", "phone") if self.accept == "any" else (self.accept,)
        for kind in kinds:
            found = extract(kind, text)
            value = normal_value(kind, found) if found else None
            if value:
                return kind, value
        return None

    def _fail(self, ctx: Ctx, why: str) -> Outcome:
        ctx.state.vars.pop(PENDING, None)
        ctx.note(f"{ctx.node_id}: {why}")
        said = SendText(self._say(ctx, "verify_failed"))
        if self.on_fail:
            return Outcome([said], goto=self.on_fail, understood=False)
        return Outcome([said, SendText(ctx.builtin("handoff")), handoff(ctx, why)], finish="handoff",
                       understood=False)

    def receive(self, ctx: Ctx, event: CustomerMessage | HttpResult) -> Outcome:
        if not isinstance(event, CustomerMessage):
            return Outcome(wait=True)
        vars_ = ctx.state.vars
        pending = vars_.get(PENDING)
        if isinstance(pending, dict) and _CODE.match(event.text):
            return self._check(ctx, pending, event.text)
        found = self._value(event.text)
        if found is not None:
            kind, value = found
            sends = int(vars_.get(f"{PENDING}_sends", 0))
            if sends >= self.max_sends:
                return self._fail(ctx, f"{sends} codes sent, none confirmed")
            code = new_code()
            at = ctx.env.now or dt.datetime.now(dt.UTC)
            vars_[PENDING] = {"kind": kind, "value": value, "hash": hash_code(code), "attempts": 0,
                              "expires": (at + CODE_TTL).isoformat()}
            vars_[f"{PENDING}_sends"] = sends + 1
            ctx.note(f"{ctx.node_id}: a code was sent to {mask(kind, value)}")
            return Outcome([SendCode(node=ctx.node_id, kind=kind, value=value, code=code,
                                     code_hash=vars_[PENDING]["hash"], language=ctx.state.language or "en"),
                            SendText(self._say(ctx, "verify_sent", target=mask(kind, value)))], wait=True)
        ctx.state.retries += 1
        if ctx.state.retries <= self.retries or isinstance(pending, dict):
            return Outcome([SendText(self._say(ctx, "verify_invalid"))], wait=True, understood=False, retrying=True)
        return self._fail(ctx, "no email address or phone number given")

    def _check(self, ctx: Ctx, pending: dict[str, Any], code: str) -> Outcome:
        kind, value = str(pending["kind"]), str(pending["value"])
        matches = code_matches(code, str(pending["hash"]))
        typed = CodeTyped(node=ctx.node_id, code_hash=str(pending["hash"]), matches=matches)
        at = ctx.env.now or dt.datetime.now(dt.UTC)
        if dt.datetime.fromisoformat(str(pending["expires"])) <= at:
            ctx.state.vars.pop(PENDING, None)
            return Outcome([typed, SendText(self._say(ctx, "verify_expired"))], wait=True, understood=False,
                           retrying=True)
        if matches:
            ctx.state.vars.pop(PENDING, None)
            ctx.state.vars[self.var] = value
            ctx.note(f"{ctx.node_id}: {kind} {mask(kind, value)} confirmed by code")
            return Outcome([typed, SendText(self._say(ctx, "verify_done", target=mask(kind, value)))],
                           goto=self.next)
        attempts = int(pending.get("attempts", 0)) + 1
        ctx.state.vars[PENDING] = {**pending, "attempts": attempts}  # a new dict: the step leaves its input alone
        if attempts >= self.max_attempts:
            failed = self._fail(ctx, f"{attempts} wrong codes for {mask(kind, value)}")
            failed.actions.insert(0, typed)
            return failed
        left = self.max_attempts - attempts
        return Outcome([typed, SendText(self._say(ctx, "verify_wrong", left=left))], wait=True, understood=False,
                       retrying=True)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "next", self.next
        if self.on_fail is not None:
            yield "on_fail", self.on_fail

    def texts(self) -> Iterator[tuple[str, Text]]:
        if self.prompt is not None:
            yield "prompt", self.prompt

    def assigns(self) -> set[str]:
        return {self.var}
