"""The one source of time; tests replace it to drive timers without sleeping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

_now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)  # noqa: E731


def now() -> dt.datetime:
    """Return the current time, timezone-aware UTC."""
    return _now()


def set_clock(fn: Callable[[], dt.datetime] | None) -> None:
    """Replace the clock (tests); None restores the wall clock."""
    global _now
    _now = fn if fn is not None else (lambda: dt.datetime.now(dt.UTC))
