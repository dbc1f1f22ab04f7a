"""The interface of a cluster (see the package's docstring); local.py and redis.py implement it."""

from __future__ import annotations

from typing import Protocol

from kommutator.auth.ratelimit import Limiter
from kommutator.events import InProcessBus


class Presence(Protocol):
    """Who has a screen open anywhere: a user is online while any of their tabs on any process is open."""

    async def opened(self, user_id: int) -> bool:
        """Count one more open screen of the user here; True when it is their first one anywhere."""
        ...

    async def closed(self, user_id: int) -> bool:
        """Count one screen of the user closed here; True when it was their last one anywhere."""
        ...

    async def expired(self) -> list[int]:
        """Users whose last screens were on processes that stopped (their entries expired): they went away."""
        ...


class Pacing(Protocol):
    """Outbound pacing per key (a channel, a chat), shared by every process that sends (workers/pacing.py)."""

    async def reserve(self, key: str, rate: float | None, slots: int = 1) -> float:
        """Seconds until the first of ``slots`` slots booked now for ``key`` (0: go now); rate None/0: no limit."""
        ...

    async def admit(self, key: str, rate: float | None, calls: int = 1) -> float:
        """0 and counted when fewer than ``rate`` calls left for ``key`` in the last second, else seconds to wait."""
        ...


class Cluster(Protocol):
    """The state server processes share. ``bus`` carries events to every process's ``everywhere`` subscribers."""

    @property
    def bus(self) -> InProcessBus: ...

    @property
    def presence(self) -> Presence: ...

    @property
    def pacer(self) -> Pacing: ...

    @property
    def process_id(self) -> str:
        """Names this process among the others (host, pid, a random part)."""
        ...

    def limiter(self, name: str, per_minute: int) -> Limiter:
        """The limiter ``name`` (login, webchat_visitor, …) allowing ``per_minute`` attempts per key, shared."""
        ...

    async def shared(self) -> bool | None:
        """Whether the shared store answers now (health checks); None for a process on its own."""
        ...

    async def start(self) -> None:
        """Connect and start the background tasks (the event listener, presence heartbeats)."""
        ...

    async def stop(self) -> None:
        ...
