"""Register the bot, called once from the composition root (app.py): its intake hooks (a new conversation on a
channel with a flow starts with the bot; a message wakes its session), its timer and its node types."""

from __future__ import annotations

from kommutator.bot import inbound, nodes
from kommutator.bot.apply import TIMEOUT_TIMER
from kommutator.bot.worker import do_bot_timeout
from kommutator.workers.timers import register_timer


def register_all() -> None:
    nodes.discover()
    inbound.register()
    register_timer(TIMEOUT_TIMER, do_bot_timeout)
