"""``handoff``: pass the conversation to people (a queue and skills, or the personal manager) with a summary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from kommutator.bot.nodes.base import Action, Ctx, Node, Outcome, SendText, Text, handoff


class HandoffNode(Node):
    kind: ClassVar[str] = "handoff"
    type: Literal["handoff"]
    text: Text | None = None
    queue: str | int | None = None
    skills: list[str] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=0, le=10)
    personal_manager: bool = False
    reason: str = "the flow hands this request to an agent"

    def enter(self, ctx: Ctx) -> Outcome:
        actions: list[Action] = [SendText(ctx.say(self.text))] if self.text else []
        actions.append(handoff(ctx, ctx.state.escalation or self.reason, queue=self.queue, skills=self.skills,
                               priority=self.priority, personal_manager=self.personal_manager))
        return Outcome(actions, finish="handoff")

    def texts(self) -> Iterator[tuple[str, Text]]:
        if self.text is not None:
            yield "text", self.text
