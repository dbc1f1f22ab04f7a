"""Register what the conversations domain handles, called once from the composition root (app.py)."""

from __future__ import annotations

from kommutator.conversations.timers import UNSNOOZE, do_wake_snoozed
from kommutator.workers.timers import register_timer


def register_all() -> None:
    register_timer(UNSNOOZE, do_wake_snoozed)
