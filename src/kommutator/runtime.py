"""The per-process runtime: settings, database, bus and the services built on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from kommutator.auth.ratelimit import Limiter, MemoryLimiter
from kommutator.config import Settings
from kommutator.crypto import SecretBox
from kommutator.db import Database
from kommutator.events import Bus, InProcessBus

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    box: SecretBox
    login_limiter: Limiter  # password attempts per account and client address (auth/ratelimit.py)
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        bus = InProcessBus()
        return cls(
            settings=settings,
            db=Database(settings.database_url, bus=bus, echo=settings.db_echo),
            bus=bus,
            box=SecretBox(settings.secret_key),
            login_limiter=MemoryLimiter(settings.login_attempts_per_minute),
        )

    def one(self, kind: type[T], make: Callable[[], T], *, key: str = "") -> T:
        """This runtime's one ``kind`` (the router, a hub, a limiter, …), made by ``make`` on first use.

        Services that subscribe to the bus or hold connections must exist once per runtime, not once per call.
        """
        key = key or kind.__qualname__
        found = self.extras.get(key)
        if not isinstance(found, kind):
            found = make()
            self.extras[key] = found
        return found


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
