"""The retry policy of durable deliveries: the outbox's messages and webhooks, and alerts' deliveries
(quality/delivery.py) — one schedule for everything we send again after a failure."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: 5 s, 25 s, 2 min, 10 min, 52 min, 4.3 h, 8 h — about 13 h in all."""

    max_attempts: int = 8
    base_delay: float = 5.0
    factor: float = 5.0
    max_delay: float = 8 * 3600.0
    jitter: float = 0.2  # ± this fraction, so that items failed together do not return together
    max_retry_after: float = 24 * 3600.0

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt; never less than the provider asked."""
        base = min(self.max_delay, self.base_delay * self.factor ** max(0, attempts - 1))
        wait = base * (1 + random.uniform(-self.jitter, self.jitter))
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
