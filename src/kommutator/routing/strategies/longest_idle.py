"""Longest idle: the agent who has waited longest since their last conversation (or since coming online)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kommutator.routing.engine import Agent


def duration(seconds: float) -> str:
    """Say a duration the way a supervisor reads it: '45 s', '4 min 12 s', '2 h 5 min'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


class LongestIdle:
    name = "longest_idle"
    title = "Longest idle"

    def key(self, agent: Agent, turn: int) -> tuple[float, int]:
        """Oldest idle_since, then lowest id."""
        return (agent.idle_since, agent.id)

    def explain(self, agent: Agent, turn: int, now: float) -> str:
        return f"longest idle: idle for {duration(now - agent.idle_since)}"
