"""The per-process runtime: settings, database, bus and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from kommutator.auth.ratelimit import LoginLimiter
from kommutator.config import Settings
from kommutator.crypto import SecretBox
from kommutator.db import Database
from kommutator.events import Bus, InProcessBus


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    box: SecretBox
    login_limiter: LoginLimiter
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        bus = InProcessBus()
        return cls(
            settings=settings,
            db=Database(settings.database_url, bus=bus, echo=settings.db_echo),
            bus=bus,
            box=SecretBox(settings.secret_key),
            login_limiter=LoginLimiter(settings.login_attempts_per_minute),
        )


async def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
