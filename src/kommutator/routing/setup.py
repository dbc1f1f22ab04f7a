"""Register routing with the core, called once from the composition root (app.py): its strategies and timers."""

from __future__ import annotations

from kommutator.routing import strategies
from kommutator.routing.service import ACCEPT_TIMER, HOLD_TIMER, do_accept_timeout, do_hold_expired
from kommutator.workers.timers import register_timer


def register_all() -> None:
    strategies.discover()
    register_timer(ACCEPT_TIMER, do_accept_timeout)
    register_timer(HOLD_TIMER, do_hold_expired)
