"""Routing strategies by name; adding a strategy is adding a file here and one line in ``discover``.

A strategy orders agents: ``key(agent, turn)`` is smaller for the agent to choose first. The engine keeps its
heaps in that order and re-keys an agent whenever anything the key may read changes (load, capacity, idle_since,
turn), so a key may use any of those fields, and must end with ``agent.id`` to make the order total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from kommutator.routing.engine import Agent


class Strategy(Protocol):
    name: str    # stored in queues.strategy
    title: str   # shown in the UI

    def key(self, agent: Agent, turn: int) -> tuple[Any, ...]:
        """Return the sort key: smaller is chosen first."""
        ...

    def explain(self, agent: Agent, turn: int, now: float) -> str:
        """Say in one clause why this agent came first, e.g. 'least busy: 1 of 5 conversations'."""
        ...


_S = TypeVar("_S", bound=type[Strategy])
_strategies: dict[str, Strategy] = {}
_discovered = False


def register(cls: _S) -> _S:
    """Make a strategy available under ``cls.name``."""
    if cls.name in _strategies and type(_strategies[cls.name]) is not cls:
        raise RuntimeError(f"routing strategy {cls.name!r} registered twice")
    _strategies[cls.name] = cls()
    return cls


def discover() -> None:
    """Register every strategy listed here, once (routing/setup.py calls it at start; look-ups call it too, for
    code that runs without an app). A new strategy is a file in this package and one line below."""
    global _discovered
    if _discovered:
        return
    from kommutator.routing.strategies.least_busy import LeastBusy
    from kommutator.routing.strategies.longest_idle import LongestIdle
    from kommutator.routing.strategies.round_robin import RoundRobin

    for strategy in (LeastBusy, LongestIdle, RoundRobin):
        register(strategy)
    _discovered = True


def get(name: str) -> Strategy:
    """Return the strategy called ``name``; KeyError naming the known ones otherwise."""
    try:
        return _strategies[name]
    except KeyError:
        pass
    discover()
    try:
        return _strategies[name]
    except KeyError:
        raise KeyError(f"unknown routing strategy {name!r}; known: {', '.join(names())}") from None


def names() -> list[str]:
    discover()
    return sorted(_strategies)
