"""``set_attribute``: store values (templates) on the contact, e.g. what the customer told the bot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from kommutator.bot.nodes.base import Action, Ctx, Node, Outcome, SetAttribute, render


class SetAttributeNode(Node):
    kind: ClassVar[str] = "set_attribute"
    type: Literal["set_attribute"]
    attributes: dict[str, str]
    next: str

    def enter(self, ctx: Ctx) -> Outcome:
        values = ctx.values()
        actions: list[Action] = []
        for name, template in self.attributes.items():
            value = render(template, values)
            ctx.state.attributes[name] = value
            actions.append(SetAttribute(name, value))
        return Outcome(actions, goto=self.next)

    def links(self) -> Iterator[tuple[str, str | None]]:
        yield "next", self.next

    def templates(self) -> Iterator[tuple[str, str]]:
        for name, template in self.attributes.items():
            yield f"attributes.{name}", template

    def check(self) -> Iterator[tuple[str, str]]:
        if not self.attributes:
            yield "attributes", "set at least one attribute, e.g. {\"segment\": \"{order_status}\"}."
