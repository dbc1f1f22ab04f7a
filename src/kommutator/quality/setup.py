"""Register quality with the core, called once from the composition root (app.py): rating answers in the intake
and the SLA timers."""

from __future__ import annotations

from kommutator.quality import csat_answers
from kommutator.quality.sla.clocks import BREACH_TIMER, WARN_TIMER
from kommutator.quality.sla.deadlines import do_breach, do_warn
from kommutator.workers.timers import register_timer


def register_all() -> None:
    csat_answers.register()
    register_timer(WARN_TIMER, do_warn)
    register_timer(BREACH_TIMER, do_breach)
