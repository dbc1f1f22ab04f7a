"""Sliding-window limit on login attempts per account and per client address."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class LoginLimiter:
    """Allow ``per_minute`` failed attempts per key in any 60 s window (in-process).

    Several processes each keep their own window; the Redis-backed limiter arrives with scale-out.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _window(self, key: str) -> deque[float]:
        q = self._failures[key]
        cutoff = time.monotonic() - 60.0
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for all keys; 0 if allowed now."""
        wait = 0.0
        for key in keys:
            q = self._window(key)
            if len(q) >= self.per_minute:
                wait = max(wait, q[0] + 60.0 - time.monotonic())
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._window(key).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
