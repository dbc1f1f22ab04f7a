"""Register quality with the core, called once from the composition root (app.py): rating answers in the intake,
past ratings on the customer card, the SLA and reply-gap timers."""

from __future__ import annotations

from kommutator.contacts import card
from kommutator.quality import csat_answers
from kommutator.quality.queries import card_ratings
from kommutator.quality.reply_gap import GAP_TIMER, do_gap_due
from kommutator.quality.sla.clocks import BREACH_TIMER, WARN_TIMER
from kommutator.quality.sla.deadlines import do_breach, do_warn
from kommutator.workers.timers import register_timer


def register_all() -> None:
    csat_answers.register()
    card.add_section("ratings", card_ratings)
    register_timer(WARN_TIMER, do_warn)
    register_timer(BREACH_TIMER, do_breach)
    register_timer(GAP_TIMER, do_gap_due)
