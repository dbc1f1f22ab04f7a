"""What the bot does inside the intake transaction, registered as intake hooks (conversations/hooks.py): a new
conversation on a channel with a flow starts with the bot, and a customer message for a conversation the bot is
serving marks its session due for the bot worker.

Prebuilt Core statements run on the inbound transaction's connection (see conversations/inbound.py): one
indexed lookup per *new* conversation, one insert for its session, one update per message while the bot serves.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from kommutator.bot.models import BotFlow, BotFlowChannel, BotSession
from kommutator.conversations import hooks

_flows = cast(Table, BotFlow.__table__)
_links = cast(Table, BotFlowChannel.__table__)
_sessions = cast(Table, BotSession.__table__)

_FLOW_FOR_CHANNEL = (select(_flows.c.id, _flows.c.version)
                     .join(_links, _links.c.flow_id == _flows.c.id)
                     .where(_links.c.channel_id == bindparam("channel_id_"), _flows.c.enabled.is_(True)))
_INSERT_SESSION = _sessions.insert()
_WAKE_SESSION = _sessions.update().where(_sessions.c.conversation_id == bindparam("conversation_id_"),
                                         _sessions.c.status == "active").values(due_at=bindparam("ts"))


def flow_for_channel(conn: Connection, channel_id: int) -> tuple[int, int] | None:
    """The enabled flow attached to the channel and its current version, if any."""
    row = conn.execute(_FLOW_FOR_CHANNEL, {"channel_id_": channel_id}).first()
    return (int(row.id), int(row.version)) if row is not None else None


def open_session(conn: Connection, *, conversation_id: int, flow: tuple[int, int], ts: dt.datetime) -> None:
    """Start the bot's session for a new conversation, due now (its first message is the first input)."""
    conn.execute(_INSERT_SESSION, {
        "conversation_id": conversation_id, "flow_id": flow[0], "flow_version": flow[1], "state": {},
        "status": "active", "outcome": "", "last_input_id": 0, "timeout_due": False, "due_at": ts,
        "claimed_until": None, "summary": "", "created_at": ts, "updated_at": ts, "finished_at": None})


def wake_session(conn: Connection, *, conversation_id: int, ts: dt.datetime) -> None:
    """A customer message arrived in a conversation the bot serves: the worker has work."""
    conn.execute(_WAKE_SESSION, {"conversation_id_": conversation_id, "ts": ts})


class FlowOpener:
    """A new conversation on a channel with an enabled flow starts with the bot (status ``bot``)."""

    def status_for(self, conn: Connection, channel_id: int) -> tuple[str, tuple[int, int]] | None:
        flow = flow_for_channel(conn, channel_id)
        return ("bot", flow) if flow is not None else None

    def opened(self, conn: Connection, conversation_id: int, token: tuple[int, int], ts: dt.datetime) -> None:
        open_session(conn, conversation_id=conversation_id, flow=token, ts=ts)


def register() -> None:
    """Hook the bot into the intake: it opens conversations on channels with a flow and wakes on messages."""
    hooks.add_opener("bot", FlowOpener())
    hooks.add_waker("bot", lambda conn, conversation_id, ts: wake_session(conn, conversation_id=conversation_id,
                                                                           ts=ts))
