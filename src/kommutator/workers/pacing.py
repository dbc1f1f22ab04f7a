"""Pacing outbound sends to a provider's published rate: one schedule per key (a channel, a chat).

``reserve(key, rate)`` books the next free slot for ``key`` and says how long to wait for it; slots are
``1 / rate`` apart, so a burst of sends leaves at the provider's rate instead of earning 429s. This is a
per-process limit: several server processes sending on one channel each keep their own schedule (a shared
Redis-backed schedule is the scale-out step), and the provider's 429 with retry-after still backs it up.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *, forget_after: float = 60.0) -> None:
        self.clock = clock
        self.forget_after = forget_after
        self._next: dict[str, float] = {}
        self._sent: dict[str, collections.deque[float]] = {}
        self.min_gap = 0.5  # of a slot: the closest two sends on one key may leave after a stall

    def reserve(self, key: str, rate: float | None, slots: int = 1) -> float:
        """Seconds until the first of ``slots`` consecutive slots booked now for ``key`` (0: go now); ``rate``
        None or 0: no limit. A message sent as several provider calls books one slot per call."""
        if not rate or rate <= 0:
            return 0.0
        t = self.clock()
        slot = max(self._next.get(key, t), t)
        self._next[key] = slot + max(1, slots) / rate
        if len(self._next) > 10_000:
            self._forget(t)
        return slot - t

    def admit(self, key: str, rate: float | None, calls: int = 1) -> float:
        """Just before a send: 0 and the send is counted when fewer than ``rate`` (at least 1) left for ``key`` in
        the last second; else the seconds to wait before asking again. A sliding second, as providers count."""
        if not rate or rate <= 0:
            return 0.0
        t = self.clock()
        sent = self._sent.setdefault(key, collections.deque())
        while sent and sent[0] <= t - 1.0:
            sent.popleft()
        limit = max(1, math.floor(rate))
        if sent and len(sent) + calls > limit:
            return max(0.001, sent[max(0, len(sent) + calls - limit - 1)] + 1.0 - t)
        if sent and t - sent[-1] < self.min_gap / rate:
            # No catching up in a burst: even the sends a stall held back leave spaced out.
            return max(0.001, sent[-1] + self.min_gap / rate - t)
        sent.extend([t] * calls)
        return 0.0

    def _forget(self, t: float) -> None:
        """Drop schedules long past (chats that went quiet), so the table does not grow without end."""
        for key in [k for k, v in self._next.items() if v < t - self.forget_after]:
            del self._next[key]
            self._sent.pop(key, None)
