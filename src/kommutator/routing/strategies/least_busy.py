"""Least busy: the agent with the smallest share of their capacity in use."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kommutator.routing.engine import Agent


class LeastBusy:
    name = "least_busy"
    title = "Least busy"

    def key(self, agent: Agent, turn: int) -> tuple[float, float, float, int]:
        """Lowest load/capacity, then lowest load, then idle longest, then lowest id."""
        share = agent.load / agent.capacity if agent.capacity > 0 else math.inf
        return (share, agent.load, agent.idle_since, agent.id)

    def explain(self, agent: Agent, turn: int, now: float) -> str:
        return f"least busy: {agent.load:g} of {agent.capacity:g} conversations"
