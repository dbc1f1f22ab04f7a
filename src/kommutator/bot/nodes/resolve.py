"""``resolve``: the bot served the customer; an optional goodbye, then the conversation is closed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from kommutator.bot.nodes.base import Action, Ctx, Node, Outcome, Resolve, SendText, Text


class ResolveNode(Node):
    kind: ClassVar[str] = "resolve"
    type: Literal["resolve"]
    text: Text | None = None
    reason: str = "served by the bot"

    def enter(self, ctx: Ctx) -> Outcome:
        actions: list[Action] = [SendText(ctx.say(self.text))] if self.text else []
        ctx.note(f"resolved by the bot ({self.reason})")
        actions.append(Resolve(reason=self.reason, summary="; ".join(ctx.state.trail)))
        return Outcome(actions, finish="resolved")

    def texts(self) -> Iterator[tuple[str, Text]]:
        if self.text is not None:
            yield "text", self.text
