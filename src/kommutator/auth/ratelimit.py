"""Sliding-window limits on attempts (logins, public forms) per key: an account, a client address, a visitor.

An attempt is counted *before* the work it guards (checking a password), in the same step that checks the
limit, so any number of parallel attempts cannot all get through: at most ``per_minute`` are let in.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Protocol

from kommutator.clock import now


class Limiter(Protocol):
    """What a caller needs from a limiter; this process's memory now, Redis (one Lua script each) with scale-out."""

    async def acquire(self, *keys: str) -> int:
        """Count one attempt against every key unless one is at its limit; return 0, or the seconds to wait
        (then nothing was counted)."""
        ...

    async def release(self, *keys: str) -> None:
        """Take back one attempt counted against each key (it turned out to be harmless: a right password)."""
        ...

    async def reset(self, *keys: str) -> None:
        """Forget every attempt against the keys."""
        ...


class MemoryLimiter:
    """Allow ``per_minute`` attempts per key in any ``window`` seconds, in this process's memory.

    Memory stays bounded: a key holds at most ``per_minute`` times (nothing is counted past the limit), keys
    whose window has passed are swept out once a window, and past ``max_keys`` the least recently touched
    keys are dropped (a flood of fresh keys costs those keys their history, never the server its memory).
    Several processes each keep their own counts until the Redis-backed limiter arrives.
    """

    def __init__(self, per_minute: int, *, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._next_sweep = 0.0

    @staticmethod
    def _time() -> float:
        return now().timestamp()  # kommutator.clock, so tests move time instead of sleeping

    def __len__(self) -> int:
        return len(self._hits)

    def _window(self, key: str, t: float) -> deque[float] | None:
        q = self._hits.get(key)
        if q is None:
            return None
        while q and q[0] <= t - self.window:
            q.popleft()
        if not q:
            del self._hits[key]
            return None
        return q

    def _sweep(self, t: float) -> None:
        if t >= self._next_sweep:
            self._next_sweep = t + self.window
            for key in [k for k, q in self._hits.items() if not q or q[-1] <= t - self.window]:
                del self._hits[key]
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def _wait(self, keys: tuple[str, ...], t: float) -> int:
        wait = 0.0
        for key in keys:
            q = self._window(key, t)
            if q is not None and len(q) >= self.per_minute:
                wait = max(wait, q[0] + self.window - t)
        return int(wait) + 1 if wait > 0 else 0

    def hit(self, *keys: str) -> int:
        """Check and count in one step (no await between them): 0 when counted, else the seconds to wait."""
        t = self._time()
        self._sweep(t)
        wait = self._wait(keys, t)
        if wait:
            return wait
        self.failed(*keys)
        return 0

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for all keys; 0 if allowed now (counts nothing)."""
        return self._wait(keys, self._time())

    def failed(self, *keys: str) -> None:
        """Count one attempt against each key without checking (prefer ``hit``, which checks first)."""
        t = self._time()
        for key in keys:
            q = self._hits.get(key)
            if q is None:
                q = self._hits[key] = deque()
            q.append(t)
            self._hits.move_to_end(key)
            while len(q) > self.per_minute:
                q.popleft()
        self._sweep(t)

    def succeeded(self, key: str) -> None:
        self._hits.pop(key, None)

    async def acquire(self, *keys: str) -> int:
        return self.hit(*keys)

    async def release(self, *keys: str) -> None:
        for key in keys:
            q = self._hits.get(key)
            if q:
                q.pop()
            if q is not None and not q:
                del self._hits[key]

    async def reset(self, *keys: str) -> None:
        for key in keys:
            self._hits.pop(key, None)


LoginLimiter = MemoryLimiter  # the name the web chat's limits import
