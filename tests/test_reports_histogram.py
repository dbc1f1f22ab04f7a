"""The rollups' histograms: buckets ordered as values, merging is adding, percentiles near the exact ones."""

from __future__ import annotations

import math
import statistics

from hypothesis import given
from hypothesis import strategies as st

from kommutator.reports.histogram import RATIO, bucket_bounds, bucket_of, of_values

values = st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1, max_size=200)


def nearest_rank(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False), st.floats(min_value=-1e7, max_value=1e7,
                                                                            allow_nan=False))
def test_buckets_are_ordered_as_values(a: float, b: float) -> None:
    if a <= b:
        assert bucket_of(a) <= bucket_of(b)
    lo, hi = bucket_bounds(bucket_of(a))
    assert lo <= a < hi or abs(a) < 1 or math.isclose(a, lo) or math.isclose(a, hi)


@given(values, values)
def test_merging_is_adding(xs: list[float], ys: list[float]) -> None:
    merged = of_values(xs)
    for b, n, t in of_values(ys).ordered():
        merged.add(b, n, t)
    whole = of_values(xs + ys)
    assert merged.count == whole.count
    assert merged.median() is not None and whole.median() is not None
    assert math.isclose(merged.median(), whole.median(), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]
    assert math.isclose(merged.p90(), whole.p90(), rel_tol=1e-9, abs_tol=1e-9)  # type: ignore[arg-type]


@given(values)
def test_percentiles_within_a_bucket_of_the_exact_ones(xs: list[float]) -> None:
    h = of_values(xs)
    exact_p90 = nearest_rank(xs, 0.9)
    p90 = h.p90()
    assert p90 is not None
    # The bucket's mean lies in the bucket of the exact value: within the bucket's width (or below 1).
    assert abs(p90 - exact_p90) <= max(1.0, exact_p90 * (RATIO - 1)) + 1e-9
    lo, hi = sorted(xs)[(len(xs) - 1) // 2], sorted(xs)[len(xs) // 2]
    median = h.median()
    assert median is not None
    assert min(lo, hi) / RATIO - 1 <= median <= max(lo, hi) * RATIO + 1


@given(st.lists(st.integers(min_value=-100, max_value=20), min_size=1, max_size=100))
def test_small_integers_ratings_and_nps_are_exact(xs: list[int]) -> None:
    # Integers up to 20 (ratings 1-5, NPS scores 0-10, 0/1 shares) and ±100 each have their own bucket.
    xs = [x for x in xs if x >= 0] + [-100, 100][: len(xs) % 3] + [0]
    h = of_values(xs)
    assert h.median() == statistics.median(xs)
    assert h.p90() == nearest_rank(xs, 0.9)
    assert h.total == sum(xs)
