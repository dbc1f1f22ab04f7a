"""Mergeable histograms: fixed log-spaced buckets whose counts and sums add up over any hours and cuts.

Every value a rollup counts falls in one bucket (``bucket_of``): ``0`` for ``|v| < 1``, then one bucket per
factor of ``RATIO`` (5 %) of ``|v|``, negative for negative values (an NPS of −100). The rollups keep, per
bucket, the count and the sum of its values, so the distribution of any period, filter and group is the sum of
its hours' buckets — no conversation is read. A percentile is the mean of the values in the bucket holding its
rank: exact when the bucket holds one distinct value (integers up to 20, 0/1 shares, ratings, NPS), otherwise
within the bucket's 5 % width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

RATIO = 1.05
_LN = math.log(RATIO)


def bucket_of(value: float) -> int:
    """The bucket of a value; buckets are ordered as their values."""
    a = abs(value)
    if a < 1:
        return 0
    b = 1 + math.floor(math.log(a) / _LN)
    return b if value > 0 else -b


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The values [low, high) a non-negative bucket holds (for negative ones: the mirror)."""
    if bucket == 0:
        return (0.0, 1.0)
    b = abs(bucket)
    lo, hi = RATIO ** (b - 1), RATIO ** b
    return (lo, hi) if bucket > 0 else (-hi, -lo)


@dataclass
class Histogram:
    """Count and sum per bucket; ``add`` merges."""

    buckets: dict[int, list[float]]

    def __init__(self) -> None:
        self.buckets = {}

    def add(self, bucket: int, n: int, total: float) -> None:
        acc = self.buckets.setdefault(bucket, [0, 0.0])
        acc[0] += n
        acc[1] += total

    def add_value(self, value: float) -> None:
        self.add(bucket_of(value), 1, value)

    @property
    def count(self) -> int:
        return int(sum(n for n, _ in self.buckets.values()))

    @property
    def total(self) -> float:
        return float(sum(t for _, t in self.buckets.values()))

    def ordered(self) -> list[tuple[int, int, float]]:
        return [(b, int(n), float(t)) for b, (n, t) in sorted(self.buckets.items()) if n]

    def at_rank(self, rank: int) -> float | None:
        """The representative value of the ``rank``-th smallest value (1-based)."""
        seen = 0
        for _b, n, t in self.ordered():
            seen += n
            if seen >= rank:
                return t / n
        return None

    def median(self) -> float | None:
        n = self.count
        if not n:
            return None
        if n % 2:
            return self.at_rank((n + 1) // 2)
        lo, hi = self.at_rank(n // 2), self.at_rank(n // 2 + 1)
        return None if lo is None or hi is None else (lo + hi) / 2

    def p90(self) -> float | None:
        n = self.count
        return self.at_rank(max(1, math.ceil(0.9 * n))) if n else None


def of_values(values: Iterable[float]) -> Histogram:
    h = Histogram()
    for v in values:
        h.add_value(v)
    return h
