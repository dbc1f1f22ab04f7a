"""``message``: say something, then go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from kommutator.bot.nodes.base import Ctx, Node, Outcome, SendText, Text


class MessageNode(Node):
    kind: ClassVar[str] = "message"
    type: Literal["message"]
    text: Text
    next: str

    def enter(self, ctx: Ctx) -> Outcome:
        return Outcome([SendText(ctx.say(self.text))], goto=self.next)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "next", self.next

    def texts(self) -> Iterator[tuple[str, Text]]:
        yield "text", self.text
