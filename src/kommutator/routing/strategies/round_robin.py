"""Round robin: everyone gets one conversation before anyone gets two."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kommutator.routing.engine import Agent


class RoundRobin:
    name = "round_robin"
    title = "Round robin"

    def key(self, agent: Agent, turn: int) -> tuple[int, int]:
        """Oldest last assignment in assignment order (0: never assigned, so first), then lowest id."""
        return (turn, agent.id)

    def explain(self, agent: Agent, turn: int, now: float) -> str:
        if turn == 0:
            return "round robin: next in turn, no conversation assigned yet"
        return "round robin: next in turn, longest since their last assignment"
