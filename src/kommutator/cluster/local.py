"""One server process on its own: the default with no Redis. Everything lives in this process's memory."""

from __future__ import annotations

import os
from collections import Counter

from kommutator.auth.ratelimit import Limiter, MemoryLimiter
from kommutator.events import InProcessBus
from kommutator.workers.pacing import Pacer


class LocalPresence:
    """Open screens counted per user in this process: the first opened and the last closed are all there is."""

    def __init__(self) -> None:
        self.screens: Counter[int] = Counter()

    async def opened(self, user_id: int) -> bool:
        self.screens[user_id] += 1
        return self.screens[user_id] == 1

    async def closed(self, user_id: int) -> bool:
        self.screens[user_id] -= 1
        if self.screens[user_id] <= 0:
            del self.screens[user_id]
            return True
        return False

    async def expired(self) -> list[int]:
        return []  # screens of this process close with it


class LocalPacing:
    """workers/pacing.py's schedule, in this process."""

    def __init__(self, pacer: Pacer | None = None) -> None:
        self.pacer = pacer or Pacer()

    async def reserve(self, key: str, rate: float | None, slots: int = 1) -> float:
        return self.pacer.reserve(key, rate, slots)

    async def admit(self, key: str, rate: float | None, calls: int = 1) -> float:
        return self.pacer.admit(key, rate, calls)


class LocalCluster:
    def __init__(self) -> None:
        self.bus = InProcessBus()
        self.presence = LocalPresence()
        self.pacer = LocalPacing()
        self.process_id = f"local-{os.getpid()}"
        self._limiters: dict[str, Limiter] = {}

    def limiter(self, name: str, per_minute: int) -> Limiter:
        found = self._limiters.get(name)
        if found is None:
            found = self._limiters[name] = MemoryLimiter(per_minute)
        return found

    async def shared(self) -> bool | None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
