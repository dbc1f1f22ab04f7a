"""Opt-out words: a customer who writes only "стоп", "отписаться", "STOP" or "unsubscribe" withdraws their
marketing consent on that channel type, and a confirmation in their language says so (docs/outbound.md).

Service messages (answers, order notifications) still reach them; "stop" inside a longer sentence is an ordinary
message. Runs inside the intake's ``run_sync`` with Core statements, like the intake itself.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from kommutator.common.text import normalize
from kommutator.contacts.models import Consent
from kommutator.conversations.models import Message
from kommutator.events import Event, MessageCreated
from kommutator.ingest.types import ChannelConfig
from kommutator.workers.models import OutboxItem

WORDS = {"стоп": "ru", "отписаться": "ru", "отписка": "ru", "stop": "en", "unsubscribe": "en"}
CONFIRMATION = {
    "ru": "Вы отписаны от рассылок в этом канале. Ответы на ваши вопросы и уведомления о заказах будут приходить "
          "как прежде.",
    "en": "You are unsubscribed from marketing messages on this channel. Answers to your questions and order "
          "notifications will still reach you.",
}
_consents = cast(Table, Consent.__table__)
_messages = cast(Table, Message.__table__)
_outbox = cast(Table, OutboxItem.__table__)
_INSERT_MESSAGE = _messages.insert().returning(_messages.c.id)
_INSERT_OUTBOX = _outbox.insert()


def language_of(text: str) -> str | None:
    """The language of the opt-out word ``text`` is, or None when it is not one."""
    if len(text) > 40:
        return None
    return WORDS.get(normalize(text))


def is_opt_out(text: str) -> bool:
    return language_of(text) is not None


def _withdraw_statement(dialect: str, at: dt.datetime, source: str) -> tuple[object, dict[str, object]]:
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_consents).values(
        contact_id=bindparam("contact_id_"), channel_type=bindparam("channel_type_"), granted=True, marketing=False,
        source=bindparam("source_"), updated_at=bindparam("ts"))
    stmt = ins.on_conflict_do_update(index_elements=[_consents.c.contact_id, _consents.c.channel_type],
                                     set_={"marketing": False, "source": ins.excluded.source,
                                           "updated_at": ins.excluded.updated_at})
    return stmt, {"source_": source, "ts": at}


def withdraw(conn: Connection, *, contact_id: int, channel: ChannelConfig, conversation_id: int,
             team_id: int | None, assignee_id: int | None, to: str, text: str, at: dt.datetime,
             events: list[Event]) -> None:
    """Record the withdrawal on the contact's consent for the channel type and queue the confirmation."""
    language = language_of(text) or "en"
    stmt, params = _withdraw_statement(conn.dialect.name, at, f"opt-out word {text.strip()[:40]!r} on {channel.type}")
    conn.execute(stmt, {"contact_id_": contact_id, "channel_type_": channel.type, **params})  # type: ignore[call-overload]
    message_id = conn.execute(_INSERT_MESSAGE, {
        "conversation_id": conversation_id, "direction": "out", "sender_type": "system", "sender_user_id": None,
        "kind": "text", "channel_id": channel.id, "provider_message_id": None, "text": CONFIRMATION[language],
        "payload": {"opt_out": True}, "status": "queued", "status_reason": "", "created_at": at,
        "status_updated_at": at}).scalar_one()
    conn.execute(_INSERT_OUTBOX, {
        "kind": "message", "message_id": message_id, "channel_id": channel.id,
        "ordering_key": f"{channel.id}:{to}", "payload": {"to": to}, "status": "pending", "attempts": 0,
        "next_attempt_at": at, "claimed_by": None, "claimed_until": None, "last_error": "", "created_at": at,
        "updated_at": at})
    events.append(MessageCreated(conversation_id=conversation_id, team_id=team_id, assignee_id=assignee_id,
                                 message_id=int(message_id), direction="out", sender_type="system",
                                 message_kind="text", channel_id=channel.id))
