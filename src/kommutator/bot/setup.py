"""Register the bot, called once from the composition root (app.py): its intake hooks (a new conversation on a
channel with a flow starts with the bot; a message wakes its session), its timer and its node types."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from kommutator.bot import inbound, nodes
from kommutator.bot.apply import TIMEOUT_TIMER
from kommutator.bot.models import BotSession
from kommutator.bot.worker import do_bot_timeout
from kommutator.workers.owners import register_claims
from kommutator.workers.timers import register_timer


def register_all() -> None:
    nodes.discover()
    inbound.register()
    register_timer(TIMEOUT_TIMER, do_bot_timeout)
    register_claims(cast(Table, BotSession.__table__))  # a dead process's bot leases are released at once
