"""Erlang C: how many agents a stream of arrivals needs to answer the target share within the target time.

Everything is computed from the Erlang B recursion ``B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1))``, which
only multiplies and divides numbers between 0 and A: no factorials, no powers, so 10 000 erlangs are as
safe as 10. Erlang C follows from it: ``C(N, A) = N·B / (N − A·(1 − B))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A slot needing more servers than this is refused rather than looped over (a million erlangs is not a queue).
MAX_SERVERS = 200_000


def erlang_b(servers: int, traffic: float) -> float:
    """The blocking probability of ``servers`` servers offered ``traffic`` erlangs (the recursion above)."""
    if servers < 0 or traffic < 0:
        raise ValueError("servers and traffic must not be negative")
    b = 1.0
    for n in range(1, servers + 1):
        b = traffic * b / (n + traffic * b)
    return b


def _c_from_b(servers: int, traffic: float, b: float) -> float:
    if servers <= traffic:
        return 1.0
    return servers * b / (servers - traffic * (1.0 - b))


def erlang_c(servers: int, traffic: float) -> float:
    """The probability that an arrival waits at all (1 when the servers cannot keep up)."""
    if traffic == 0:
        return 0.0
    return _c_from_b(servers, traffic, erlang_b(servers, traffic))


def _service_level(servers: int, traffic: float, c: float, aht: float, target_seconds: float) -> float:
    if traffic == 0:
        return 1.0
    if servers <= traffic:
        return 0.0
    return max(0.0, 1.0 - c * math.exp(-(servers - traffic) * target_seconds / aht))


def service_level(servers: int, traffic: float, aht: float, target_seconds: float) -> float:
    """The share of arrivals answered within ``target_seconds``: ``1 − C·e^(−(N−A)·T/AHT)``."""
    return _service_level(servers, traffic, erlang_c(servers, traffic), aht, target_seconds)


@dataclass(frozen=True)
class Staffing:
    """What one interval needs: servers for the target, and what that staffing gives."""

    traffic: float  # erlangs: arrivals × AHT ÷ interval
    servers: int  # agents busy on the queue (or chat slots, with concurrency)
    service_level: float  # 0..1 answered within the target time
    wait_probability: float  # Erlang C
    average_wait_seconds: float  # average speed of answer
    occupancy: float  # traffic ÷ servers


def staff(*, arrivals: float, interval_seconds: float, aht: float, target_seconds: float,
          target_fraction: float) -> Staffing:
    """The fewest servers whose service level reaches ``target_fraction`` within ``target_seconds``."""
    if arrivals < 0 or interval_seconds <= 0 or aht <= 0 or target_seconds < 0 or not 0 < target_fraction < 1:
        raise ValueError("arrivals ≥ 0, interval > 0, aht > 0, target seconds ≥ 0 and 0 < target fraction < 1")
    traffic = arrivals * aht / interval_seconds
    if traffic == 0:
        return Staffing(0.0, 0, 1.0, 0.0, 0.0, 0.0)
    # Walk the recursion up to the first count that can keep up (N > A), then on until the target is met;
    # each step reuses B(n-1), so the whole search is one pass.
    b = 1.0
    n = 0
    while True:
        n += 1
        if n > MAX_SERVERS:
            raise ValueError(f"more than {MAX_SERVERS} agents would be needed")
        b = traffic * b / (n + traffic * b)
        if n <= traffic:
            continue
        c = _c_from_b(n, traffic, b)
        sl = _service_level(n, traffic, c, aht, target_seconds)
        if sl >= target_fraction:
            return Staffing(traffic, n, sl, c, c * aht / (n - traffic), traffic / n)
